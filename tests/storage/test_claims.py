"""Document claims and run leases on SQLite and PostgreSQL: one holder at a time, takeover of
expired leases, release, and the sweep that marks dead runs `crashed`."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from storage import claims, queries
from storage.claims import ClaimKey
from storage.db import make_engine, make_session_factory
from storage.models import DocumentClaim, ExtractionRun, utcnow
from storage.retry import retry_database

KEY = ClaimKey("a" * 64, "t" * 64, "full", "ocr:tesseract@768")


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


def start(sessions, lease_seconds: float = 60) -> int:
    with sessions.begin() as session:
        queries.ensure_template_set(session, KEY.template_set_hash, "t", "{}")
        run_id = queries.start_run(session, flow_run_id=None, source="docs", template_set_hash=KEY.template_set_hash,
                                   policy="full", reader="r", parameters={})
        claims.renew_lease(session, run_id, lease_seconds)
    return run_id


def claim(sessions, run_id: int, lease_seconds: float = 60, key: ClaimKey = KEY) -> int | None:
    with sessions.begin() as session:
        return claims.claim_document(session, key, run_id, lease_seconds)


def test_one_run_holds_a_claim_until_it_releases_it(sessions):
    first, second = start(sessions), start(sessions)
    assert claim(sessions, first) is None
    assert claim(sessions, first) is None  # already ours (a retried batch)
    assert claim(sessions, second) == first
    assert claim(sessions, second, key=replace(KEY, sha256="b" * 64)) is None  # other content
    with sessions.begin() as session:
        claims.release_claim(session, KEY, second)  # not second's: nothing happens
    assert claim(sessions, second) == first
    with sessions.begin() as session:
        claims.release_claim(session, KEY, first)
    assert claim(sessions, second) is None


def test_an_expired_claim_is_taken_over_and_a_renewed_one_is_not(sessions):
    first, second = start(sessions), start(sessions)
    assert claim(sessions, first, lease_seconds=0.3) is None
    with sessions.begin() as session:
        claims.renew_lease(session, first, 60)
    time.sleep(0.4)
    assert claim(sessions, second) == first  # the heartbeat kept it
    with sessions.begin() as session:
        claims.renew_lease(session, first, 0.2)
    time.sleep(0.3)
    assert claim(sessions, second) is None


def test_finishing_a_run_releases_its_claims(sessions):
    first, second = start(sessions), start(sessions)
    assert claim(sessions, first) is None
    with sessions.begin() as session:
        queries.finish_run(session, first, status="interrupted", error="SIGTERM")
    assert claim(sessions, second) is None


def test_concurrent_claims_have_one_winner(sessions):
    runs = [start(sessions) for _ in range(4)]
    barrier, results = threading.Barrier(len(runs)), {}

    def race(run_id):
        barrier.wait(10)
        results[run_id] = retry_database(lambda: claim(sessions, run_id), what="claim")  # SQLite: busy waits

    threads = [threading.Thread(target=race, args=(run_id,)) for run_id in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [run_id for run_id, holder in results.items() if holder is None]
    assert len(winners) == 1
    assert {holder for holder in results.values() if holder is not None} == set(winners)


def test_the_sweep_marks_runs_with_an_expired_lease_crashed_and_frees_their_documents(sessions):
    dead, alive = start(sessions, lease_seconds=0.2), start(sessions, lease_seconds=60)
    assert claim(sessions, dead, lease_seconds=60) is None  # the claim outlives the run's lease
    with sessions.begin() as session:
        legacy = queries.start_run(session, flow_run_id=None, source="docs", template_set_hash=KEY.template_set_hash,
                                   policy="full", reader="r", parameters={})  # from before leases: none
        session.execute(sa.update(ExtractionRun).where(ExtractionRun.id == legacy)
                        .values(started_at=utcnow() - timedelta(hours=1)))
    time.sleep(0.3)
    with sessions.begin() as session:
        swept = claims.sweep_stale_runs(session, by_run=alive, lease_seconds=900)
    assert sorted(swept) == sorted([dead, legacy])
    with sessions.begin() as session:
        rows = {r.id: r for r in session.scalars(sa.select(ExtractionRun))}
        assert session.scalar(sa.select(sa.func.count()).select_from(DocumentClaim)) == 0
    assert rows[alive].status == "running" and rows[alive].finished_at is None
    for run_id in (dead, legacy):
        assert rows[run_id].status == "crashed" and rows[run_id].finished_at is not None
        assert "stopped renewing its lease" in rows[run_id].error and f"found by run {alive}" in rows[run_id].error
    with sessions.begin() as session:
        assert claims.sweep_stale_runs(session, by_run=alive, lease_seconds=900) == []


def keys(*names: str) -> list[ClaimKey]:
    return [replace(KEY, sha256=name * 64) for name in names]


def claim_batch(sessions, run_id: int, batch: list[ClaimKey], lease_seconds: float = 60) -> dict[ClaimKey, int]:
    with sessions.begin() as session:
        return claims.claim_documents(session, batch, run_id, lease_seconds)


def holders_now(sessions) -> dict[ClaimKey, int]:
    with sessions() as session:
        return {ClaimKey(r.sha256, r.template_set_hash, r.policy, r.reader): r.run_id
                for r in session.scalars(sa.select(DocumentClaim))}


def test_a_batch_claim_returns_the_holders_of_the_keys_that_are_not_ours(sessions):
    first, second = start(sessions), start(sessions)
    assert claim_batch(sessions, first, keys("a", "b")) == {}  # new
    assert claim_batch(sessions, first, keys("a", "b", "a")) == {}  # already ours, a key twice
    assert claim_batch(sessions, second, keys("b", "c", "d")) == {keys("b")[0]: first}
    assert claim_batch(sessions, second, []) == {}
    assert holders_now(sessions) == dict(zip(keys("a", "b", "c", "d"), [first, first, second, second]))


def test_a_batch_claim_takes_over_expired_leases_only(sessions):
    first, second = start(sessions), start(sessions)
    assert claim_batch(sessions, first, keys("a"), lease_seconds=0.2) == {}
    assert claim_batch(sessions, first, keys("b"), lease_seconds=60) == {}
    time.sleep(0.3)
    assert claim_batch(sessions, second, keys("a", "b", "c")) == {keys("b")[0]: first}
    assert holders_now(sessions) == dict(zip(keys("a", "b", "c"), [second, first, second]))


def test_a_batch_larger_than_a_statement_is_claimed_in_chunks(sessions, monkeypatch):
    monkeypatch.setattr(claims, "CLAIM_CHUNK", 3)
    first, second = start(sessions), start(sessions)
    many = keys(*"0123456789")
    assert claim_batch(sessions, first, many[::2]) == {}
    assert claim_batch(sessions, second, many) == {key: first for key in many[::2]}
    assert holders_now(sessions) == {key: (first if i % 2 == 0 else second) for i, key in enumerate(many)}


def test_concurrent_batch_claims_on_overlapping_keys_never_both_win_a_key(sessions):
    runs = [start(sessions) for _ in range(4)]
    universe = [replace(KEY, sha256=f"{i:064x}") for i in range(2000)]
    batches = {run_id: random.Random(run_id).sample(universe, 1500) for run_id in runs}  # shuffled, overlapping
    barrier, results = threading.Barrier(len(runs)), {}

    def race(run_id):
        barrier.wait(10)
        try:  # no retry: a deadlock between the runs' row locks would fail here
            results[run_id] = claim_batch(sessions, run_id, batches[run_id])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[run_id] = exc

    threads = [threading.Thread(target=race, args=(run_id,)) for run_id in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(isinstance(result, dict) for result in results.values()) and len(results) == len(runs), results
    held = holders_now(sessions)
    for key in universe:
        wanted = [run_id for run_id in runs if key in batches[run_id]]
        winners = [run_id for run_id in wanted if key not in results[run_id]]
        assert winners == ([held[key]] if wanted else [])  # exactly the holder won
        assert all(results[run_id][key] == held[key] for run_id in wanted if run_id not in winners)


def test_claim_unextracted_skips_what_is_extracted_with_the_same_setup_and_claims_the_rest(sessions):
    first, second = start(sessions), start(sessions)
    done, fresh, held = keys("a", "b", "c")
    other_reader = replace(done, reader="another")
    with sessions.begin() as session:
        document_id = queries.upsert_document(session, sha256=done.sha256, uri="a.pdf", media_type="application/pdf",
                                              size_bytes=1, page_count=1)
        queries.save_extraction(session, run_id=first, document_id=document_id, template_set_hash=done.template_set_hash,
                                policy=done.policy, reader=done.reader, answers=[])
        assert claims.claim_documents(session, [held], first, 60) == {}
    with sessions.begin() as session:
        extracted, holders = claims.claim_unextracted(session, [done, fresh, held, other_reader], second, 60)
    assert (extracted, holders) == ({done}, {held: first})
    assert holders_now(sessions) == {held: first, fresh: second, other_reader: second}
