"""Queries of a run split into shards (app/fanout.py): each shard is a run of its own, with
`parent_run_id` naming the run that listed it. Each takes a Session and never commits.

    shard_runs(session, parent_id)             # Prefect flow run id -> (run id, status)
    recorded_uris(session, shard_id)           # what a shard finished before it died
    shard_totals(session, parent_id)           # the counters the parent closes with
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import RUN_DOCUMENT_STATUSES, ExtractionRun, RunDocument


def shard_runs(session: Session, parent_run_id: int) -> dict[str, tuple[int, str]]:
    """The parent's shards by the Prefect flow run that runs each: {flow_run_id: (run_id, status)}."""
    rows = session.execute(sa.select(ExtractionRun.flow_run_id, ExtractionRun.id, ExtractionRun.status)
                           .where(ExtractionRun.parent_run_id == parent_run_id))
    return {flow_run_id: (run_id, status) for flow_run_id, run_id, status in rows}


def recorded_uris(session: Session, run_id: int) -> set[str]:
    """URIs of the documents the run recorded (extracted, empty, skipped or failed)."""
    return set(session.scalars(sa.select(RunDocument.uri).where(RunDocument.run_id == run_id)))


def shard_totals(session: Session, parent_run_id: int) -> dict[str, int | float]:
    """Documents by status, pages and answers recorded by the parent's shards, and the
    seconds in policy and reader of those that closed (a crashed shard's are lost)."""
    shards = sa.select(ExtractionRun.id).where(ExtractionRun.parent_run_id == parent_run_id)
    by_status = {status: 0 for status in RUN_DOCUMENT_STATUSES}
    pages = answers = 0
    for status, count, status_pages, status_answers in session.execute(
            sa.select(RunDocument.status, sa.func.count(), sa.func.coalesce(sa.func.sum(RunDocument.pages), 0),
                      sa.func.coalesce(sa.func.sum(RunDocument.answers), 0))
            .where(RunDocument.run_id.in_(shards)).group_by(RunDocument.status)):
        by_status[status], pages, answers = count, pages + status_pages, answers + status_answers
    policy, reader = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(ExtractionRun.policy_seconds), 0.0),
                  sa.func.coalesce(sa.func.sum(ExtractionRun.reader_seconds), 0.0))
        .where(ExtractionRun.parent_run_id == parent_run_id)).one()
    return {"documents_extracted": by_status["extracted"], "documents_empty": by_status["empty"],
            "documents_skipped": by_status["skipped"], "documents_failed": by_status["failed"],
            "pages_processed": pages, "answers_written": answers,
            "policy_seconds": float(policy), "reader_seconds": float(reader)}
