"""Document claims and run leases on SQLite and PostgreSQL: one holder at a time, takeover of
expired leases, release, and the sweep that marks dead runs `crashed`."""

from __future__ import annotations

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
