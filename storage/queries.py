"""Queries the flows call. Each takes a Session and never commits: the caller owns the
transaction (`with Session.begin() as session: ...`).

Inserts that can race with a concurrent run use INSERT ... ON CONFLICT (SQLite and
PostgreSQL), so a lost race never aborts the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.errors import AlreadyExtracted, RunNotFoundError
from storage.models import (
    RUN_DOCUMENT_STATUSES,
    RUN_STATUSES,
    Answer,
    Document,
    DocumentClaim,
    Extraction,
    ExtractionRun,
    RunDocument,
    TemplateSetRow,
    utcnow,
)
from storage.rows import AnswerRow
from storage.views import document_fields, extracted_fields

__all__ = [
    "AnswerRow",
    "ensure_template_set",
    "start_run",
    "finish_run",
    "find_extraction",
    "find_extractions",
    "upsert_document",
    "record_run_document",
    "save_extraction",
    "run_summary",
    "run_documents",
    "run_fields",
    "field_answers",
    "best_fields",
]

RUN_COUNTERS = (
    "documents_total",
    "documents_extracted",
    "documents_skipped",
    "documents_failed",
    "pages_processed",
    "answers_written",
    "wall_seconds",
    "policy_seconds",
    "reader_seconds",
)
FAILURES_IN_SUMMARY = 20
FIND_CHUNK = 5000  # sha256s per look-up: parameters under SQLite's 32,766 and psycopg's 65,535


def _insert(session: Session, model):
    """The dialect's INSERT, which has on_conflict_do_nothing/_do_update."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(
        f"unsupported database dialect {dialect!r} (use SQLite or PostgreSQL)"
    )


def ensure_template_set(session: Session, hash: str, name: str, content: object) -> None:
    """Record a template set by its content hash; a no-op if it is already there.

    `content` is stored as JSON; a JSON string (e.g. TemplateSet.canonical_json()) is
    parsed first, so the column holds the structure rather than a quoted string.
    """
    if isinstance(content, str):
        content = json.loads(content)
    stmt = _insert(session, TemplateSetRow).values(hash=hash, name=name, content=content)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["hash"]))


def start_run(
    session: Session,
    *,
    flow_run_id: str | None,
    source: str,
    template_set_hash: str,
    policy: str,
    reader: str,
    parameters: dict[str, Any],
    parent_run_id: int | None = None,
) -> int:
    """Insert a run with status 'running' (a shard of `parent_run_id` if given); return its id."""
    run = ExtractionRun(
        flow_run_id=flow_run_id,
        parent_run_id=parent_run_id,
        source=source,
        template_set_hash=template_set_hash,
        policy=policy,
        reader=reader,
        parameters=parameters,
        status="running",
        started_at=utcnow(),
    )
    session.add(run)
    session.flush()
    return run.id


def finish_run(
    session: Session, run_id: int, *, status: str, error: str | None = None, **counters: float | int
) -> None:
    """Set the final status, error, finished_at and any of RUN_COUNTERS given as keywords;
    the run's document claims are released."""
    if status not in RUN_STATUSES:
        raise ValueError(f"run status {status!r} is not one of {RUN_STATUSES}")
    unknown = set(counters) - set(RUN_COUNTERS)
    if unknown:
        raise TypeError(f"finish_run got unknown counters {sorted(unknown)}; known: {RUN_COUNTERS}")
    result = session.execute(
        sa.update(ExtractionRun)
        .where(ExtractionRun.id == run_id)
        .values(status=status, error=error, finished_at=utcnow(), **counters)
    )
    if result.rowcount == 0:
        raise RunNotFoundError(f"extraction run {run_id} does not exist")
    session.execute(sa.delete(DocumentClaim).where(DocumentClaim.run_id == run_id))


def find_extraction(
    session: Session, sha256: str, template_set_hash: str, policy: str, reader: str
) -> int | None:
    """The id of the extraction of this document content with this setup, or None."""
    return find_extractions(session, [sha256], template_set_hash, policy, reader).get(sha256)


def find_extractions(
    session: Session, sha256s: Sequence[str], template_set_hash: str, policy: str, reader: str
) -> dict[str, int]:
    """sha256 -> extraction id, for those of the documents extracted with this setup."""
    found: dict[str, int] = {}
    for start in range(0, len(sha256s), FIND_CHUNK):
        found.update(session.execute(
            sa.select(Document.sha256, Extraction.id)
            .join(Document, Document.id == Extraction.document_id)
            .where(
                Document.sha256.in_(sha256s[start:start + FIND_CHUNK]),
                Extraction.template_set_hash == template_set_hash,
                Extraction.policy == policy,
                Extraction.reader == reader,
            )
        ).all())
    return found


def upsert_document(
    session: Session,
    *,
    sha256: str,
    uri: str,
    media_type: str | None,
    size_bytes: int | None,
    page_count: int | None,
) -> int:
    """Insert the document or update the known one; return its id.

    The uri becomes the latest one seen. None for media_type, size_bytes or page_count
    keeps the stored value (e.g. setting page_count after rendering); a new document
    needs media_type and size_bytes.
    """
    now = utcnow()
    if media_type is None or size_bytes is None:
        document_id = session.execute(
            sa.update(Document)
            .where(Document.sha256 == sha256)
            .values(
                uri=uri,
                media_type=sa.func.coalesce(media_type, Document.media_type),
                size_bytes=sa.func.coalesce(size_bytes, Document.size_bytes),
                page_count=sa.func.coalesce(page_count, Document.page_count),
                updated_at=now,
            )
            .returning(Document.id),
            execution_options={"synchronize_session": False},
        ).scalar()
        if document_id is None:
            raise ValueError(f"new document {sha256[:12]} ({uri}) needs media_type and size_bytes")
        return document_id
    stmt = _insert(session, Document).values(
        sha256=sha256,
        uri=uri,
        media_type=media_type,
        size_bytes=size_bytes,
        page_count=page_count,
        created_at=now,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["sha256"],
        set_={
            "uri": stmt.excluded.uri,
            "media_type": stmt.excluded.media_type,
            "size_bytes": stmt.excluded.size_bytes,
            "page_count": sa.func.coalesce(stmt.excluded.page_count, Document.page_count),
            "updated_at": stmt.excluded.updated_at,
        },
    )
    return session.execute(stmt.returning(Document.id)).scalar_one()


def record_run_document(
    session: Session,
    run_id: int,
    *,
    uri: str,
    document_id: int | None = None,
    status: str,
    error: str | None = None,
    pages: int | None = None,
    answers: int | None = None,
    seconds: float | None = None,
) -> None:
    """Record what happened to one listed object; a retried task overwrites its own record."""
    if status not in RUN_DOCUMENT_STATUSES:
        raise ValueError(f"document status {status!r} is not one of {RUN_DOCUMENT_STATUSES}")
    values = dict(
        document_id=document_id,
        status=status,
        error=error,
        pages=pages,
        answers=answers,
        seconds=seconds,
    )
    stmt = _insert(session, RunDocument).values(
        run_id=run_id, uri=uri, created_at=utcnow(), **values
    )
    session.execute(stmt.on_conflict_do_update(index_elements=["run_id", "uri"], set_=values))


def save_extraction(
    session: Session,
    *,
    run_id: int,
    document_id: int,
    template_set_hash: str,
    policy: str,
    reader: str,
    answers: Sequence[AnswerRow],
) -> int:
    """Insert the extraction marker and its answers; return the extraction id.

    Raises AlreadyExtracted (carrying the existing id, writing nothing) when the key
    (document, template set, policy, reader) is taken, e.g. by a concurrent run, and
    ValueError when two answers claim to be the best page of one field.
    """
    best = [a.field for a in answers if a.is_best]
    if len(best) != len(set(best)):
        raise ValueError(f"more than one is_best answer for a field in {sorted(best)}")
    now = utcnow()
    key = dict(
        document_id=document_id, template_set_hash=template_set_hash, policy=policy, reader=reader
    )
    stmt = (
        _insert(session, Extraction)
        .values(run_id=run_id, created_at=now, **key)
        .on_conflict_do_nothing(index_elements=list(key))
        .returning(Extraction.id)
    )
    extraction_id = session.execute(stmt).scalar()
    if extraction_id is None:
        existing = session.scalar(sa.select(Extraction.id).filter_by(**key))
        raise AlreadyExtracted(
            existing,
            f"document {document_id} is already extracted (extraction {existing}) with template "
            f"set {template_set_hash[:12]}, policy {policy!r}, reader {reader!r}",
        )
    if answers:
        rows = [
            {
                **a.to_dict(),
                "extraction_id": extraction_id,
                "document_id": document_id,
                "policy": policy,
                "reader": reader,
                "created_at": now,
            }
            for a in answers
        ]
        session.execute(sa.insert(Answer), rows)
    return extraction_id


def _with_shards(run_id: int):
    """The run's id and its shards' (a run that fanned out recorded its documents in them)."""
    return sa.select(ExtractionRun.id).where((ExtractionRun.id == run_id) | (ExtractionRun.parent_run_id == run_id))


def run_summary(session: Session, run_id: int) -> dict[str, Any]:
    """The run's row, document counts by status, and its first failures (uri, error), its
    shards' documents included.

    Plain JSON values (timestamps as ISO 8601 UTC text), so flows can return it as is.
    """
    run = session.get(ExtractionRun, run_id, populate_existing=True)
    if run is None:
        raise RunNotFoundError(f"extraction run {run_id} does not exist")
    summary = {
        c.key: _json_value(getattr(run, c.key)) for c in sa.inspect(ExtractionRun).column_attrs
    }
    counts = session.execute(
        sa.select(RunDocument.status, sa.func.count())
        .where(RunDocument.run_id.in_(_with_shards(run_id)))
        .group_by(RunDocument.status)
    ).all()
    summary["documents_by_status"] = {s: 0 for s in RUN_DOCUMENT_STATUSES} | dict(counts)
    summary["failures"] = run_documents(session, run_id, "failed", limit=FAILURES_IN_SUMMARY)
    summary["empty"] = run_documents(session, run_id, "empty", limit=FAILURES_IN_SUMMARY)
    return summary


def run_documents(session: Session, run_id: int, status: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The run's (and its shards') documents with this status, by uri: [{"uri", "error"}]."""
    rows = session.execute(
        sa.select(RunDocument.uri, RunDocument.error)
        .where(RunDocument.run_id.in_(_with_shards(run_id)), RunDocument.status == status)
        .order_by(RunDocument.uri)
        .limit(limit)
    ).all()
    return [{"uri": uri, "error": error} for uri, error in rows]


def run_fields(session: Session, run_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """Rows of the extracted_fields view for answers written by this run.

    Plain JSON values (extracted_at as ISO 8601 UTC text), ready for a table artifact.
    """
    rows = session.execute(
        sa.select(extracted_fields)
        .where(extracted_fields.c.run_id == run_id)
        .order_by(
            extracted_fields.c.document_uri,
            extracted_fields.c.field,
            extracted_fields.c.page_number,
        )
        .limit(limit)
    ).mappings()
    return [{k: _json_value(v) for k, v in row.items()} for row in rows]


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def best_fields(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    """Rows of the document_fields view (best page per document and field), newest first."""
    rows = session.execute(
        sa.select(document_fields)
        .order_by(document_fields.c.extracted_at.desc(), document_fields.c.document_uri, document_fields.c.field)
        .limit(limit)
    ).mappings()
    return [{k: _json_value(v) for k, v in row.items()} for row in rows]


def field_answers(
    session: Session,
    *,
    run_id: int | None = None,
    uri_prefix: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Rows of document_fields (best page per document and field) in the order they were
    written, filtered by the run that wrote them (or its shards), a document URI prefix and/or a time range
    of extracted_at (since inclusive, until exclusive, UTC); no filter: every row."""
    view = document_fields
    query = sa.select(
        view.c.answer_id, view.c.document_uri, view.c.document_sha256, view.c.field, view.c.answer,
        view.c.confidence, view.c.needs_review, view.c.run_id, view.c.extracted_at,
    ).order_by(view.c.answer_id)
    if run_id is not None:
        query = query.where(view.c.run_id.in_(_with_shards(run_id)))
    if uri_prefix:
        query = query.where(view.c.document_uri.startswith(uri_prefix, autoescape=True))
    if since is not None:
        query = query.where(view.c.extracted_at >= since)
    if until is not None:
        query = query.where(view.c.extracted_at < until)
    return [dict(row) for row in session.execute(query).mappings()]
