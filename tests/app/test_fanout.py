"""The plain side of a sharded run (app/fanout.py, storage/shards.py), on SQLite and
PostgreSQL: shards cut from a stream, a lost shard's unrecorded keys, the parent's totals
and summary over its shards."""

from __future__ import annotations

import itertools
import time

import pytest
import sqlalchemy as sa

from app import fanout
from app.extract import Models
from app.params import ExtractParams
from app.resources import get_session_factory
from cropvlm.templates import load_template_set
from storage import claims, queries
from storage.claims import ClaimKey
from storage.models import DocumentClaim

MODELS = Models("full", "full", "fake", "fake")


def test_shards_are_cut_from_a_stream_without_reading_ahead():
    keys = (f"k{i}" for i in itertools.count())  # endless: a listing that does not fit in memory
    shards = fanout.cut_shards(keys, 5)
    assert [next(shards).keys for _ in range(2)] == [[f"k{i}" for i in range(5)], [f"k{i}" for i in range(5, 10)]]
    assert next(keys) == "k10"  # nothing read beyond the second shard
    assert [(s.number, len(s.keys)) for s in fanout.cut_shards(map(str, range(12)), 5)] == [(1, 5), (2, 5), (3, 2)]


def test_a_shard_refuses_another_setup_than_its_parents():
    templates = load_template_set(["templates/receipt.yaml"])
    fanout.check_setup(templates, MODELS, template_set_hash=templates.content_hash, policy_version="full",
                       reader_version="fake")
    with pytest.raises(fanout.SetupMismatchError, match="reader fake here, fake@2 in the parent run"):
        fanout.check_setup(templates, MODELS, template_set_hash=templates.content_hash, policy_version="full",
                           reader_version="fake@2")


def _start(session, parent: int | None, flow_run_id: str | None) -> int:
    run_id = queries.start_run(session, flow_run_id=flow_run_id, source="docs", template_set_hash="t" * 64,
                               policy="full", reader="fake", parameters={}, parent_run_id=parent)
    claims.renew_lease(session, run_id, 60)
    return run_id


def test_a_lost_shard_leaves_its_unrecorded_keys_and_the_parent_counts_its_shards(db_url, tmp_path):
    params = ExtractParams(source=str(tmp_path), database_url=db_url, lease_seconds=2)
    with get_session_factory(db_url).begin() as session:
        queries.ensure_template_set(session, "t" * 64, "t", "{}")
        parent = _start(session, None, "parent")
        done, dead = _start(session, parent, "flow-done"), _start(session, parent, "flow-dead")
        for run_id, key, status in ((done, "a.png", "extracted"), (done, "b.png", "failed"),
                                    (dead, "c.png", "extracted")):
            queries.record_run_document(session, run_id, uri=str(tmp_path / key), status=status, pages=1,
                                        answers=4 if status == "extracted" else None)
        claims.claim_document(session, ClaimKey("d" * 64, "t" * 64, "full", "fake"), dead, lease_seconds=1)
        queries.finish_run(session, done, status="completed_with_failures", policy_seconds=1.5, reader_seconds=2.0)
    assert fanout.lost_shards(params, parent) == set()  # the dead shard's lease still runs: Prefect told us
    keys = ["c.png", "d.png", "e.png"]
    assert fanout.remaining_keys(params, parent, "flow-dead", keys, "flow run ended Crashed") == ["d.png", "e.png"]
    assert fanout.remaining_keys(params, parent, "flow-never-started", keys, "flow run ended Failed") == keys
    with get_session_factory(db_url).begin() as session:
        assert queries.run_summary(session, dead)["status"] == "crashed"
        assert queries.run_summary(session, dead)["error"] == "crashed: flow run ended Crashed"
        assert session.scalar(sa.select(sa.func.count()).select_from(DocumentClaim)) == 0  # freed at once
        summary = queries.run_summary(session, parent)
    assert summary["documents_by_status"] == {"extracted": 2, "empty": 0, "skipped": 0, "failed": 1}
    assert [f["uri"] for f in summary["failures"]] == [str(tmp_path / "b.png")]
    assert fanout.totals(params, parent) == {
        "documents_extracted": 2, "documents_empty": 0, "documents_skipped": 0, "documents_failed": 1,
        "pages_processed": 3, "answers_written": 8, "policy_seconds": 1.5, "reader_seconds": 2.0}


def test_a_shard_whose_lease_ran_out_is_lost(db_url, tmp_path):
    params = ExtractParams(source=str(tmp_path), database_url=db_url, lease_seconds=2)
    with get_session_factory(db_url).begin() as session:
        queries.ensure_template_set(session, "t" * 64, "t", "{}")
        parent = _start(session, None, "parent")
        shard = queries.start_run(session, flow_run_id="flow-silent", source="docs", template_set_hash="t" * 64,
                                  policy="full", reader="fake", parameters={}, parent_run_id=parent)
        claims.renew_lease(session, shard, 0.5)
    time.sleep(0.6)
    assert fanout.lost_shards(params, parent) == {"flow-silent"}
