"""Query functions on SQLite and PostgreSQL: the flow's sequence, idempotence, failures, views."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage import queries
from storage.db import make_engine, make_session_factory
from storage.errors import AlreadyExtracted, RunNotFoundError
from storage.models import Answer, Extraction, TemplateSetRow
from storage.queries import AnswerRow
from storage.views import VIEW_COLUMNS, document_fields

TS_HASH = "ab" * 32
DOC_SHA = "cd" * 32


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


def _answer(page: int, field: str, *, best: bool, crop: bool = True) -> AnswerRow:
    box = (
        dict(
            crop_x1=10.0,
            crop_y1=20.0,
            crop_x2=40.0,
            crop_y2=30.0,
            crop_px_x1=100,
            crop_px_y1=400,
            crop_px_x2=400,
            crop_px_y2=600,
        )
        if crop
        else {}
    )
    return AnswerRow(
        page_number=page,
        field=field,
        question=f"What is the {field}?",
        answer_type="text",
        answer=f"{field} on p{page}",
        value=f"{field}{page}",
        confidence=0.5 + 0.1 * page,
        needs_review=page == 1,  # as if the review threshold were 0.65
        is_best=best,
        page_width=1000,
        page_height=2000,
        policy_valid=crop,
        crop_uri=f"s3://b/crops/{field}{page}.png" if crop else None,
        policy_output="[10, 20, 40, 30]." if crop else "no box",
        latency_ms=12.5,
        **box,
    )


def _start(session, source="s3://b/in/") -> int:
    queries.ensure_template_set(
        session, TS_HASH, "receipt@v1", {"templates": [{"name": "receipt"}]}
    )
    return queries.start_run(
        session,
        flow_run_id="flow-1",
        source=source,
        template_set_hash=TS_HASH,
        policy="center",
        reader="ocr:rapidocr@768",
        parameters={"limit": 10},
    )


def _save(session, run_id: int, document_id: int, *, policy: str, reader: str, answers) -> int:
    return queries.save_extraction(session, run_id=run_id, document_id=document_id, template_set_hash=TS_HASH,
                                   policy=policy, reader=reader, answers=answers)


def _document(session, uri="s3://b/in/a.pdf", page_count: int | None = 2) -> int:
    return queries.upsert_document(
        session,
        sha256=DOC_SHA,
        uri=uri,
        media_type="application/pdf",
        size_bytes=1234,
        page_count=page_count,
    )


ANSWERS = [
    _answer(1, "total", best=False),
    _answer(2, "total", best=True),
    _answer(1, "date", best=True, crop=False),
    _answer(2, "date", best=False),
]


def test_extraction_round_trip_through_views(sessions):
    with sessions.begin() as s:
        queries.ensure_template_set(s, TS_HASH, "receipt@v1", {"again": True})  # no-op
        run_id = _start(s)
        doc_id = _document(s)
        assert queries.find_extraction(s, DOC_SHA, TS_HASH, "center", "ocr:rapidocr@768") is None
        extraction_id = _save(s, run_id, doc_id, policy="center", reader="ocr:rapidocr@768", answers=ANSWERS)
        queries.record_run_document(
            s,
            run_id,
            uri="s3://b/in/a.pdf",
            document_id=doc_id,
            status="extracted",
            pages=2,
            answers=4,
            seconds=1.5,
        )

    with sessions() as s:
        assert (
            queries.find_extraction(s, DOC_SHA, TS_HASH, "center", "ocr:rapidocr@768")
            == extraction_id
        )
        assert queries.find_extraction(s, DOC_SHA, TS_HASH, "full", "ocr:rapidocr@768") is None
        rows = queries.run_fields(s, run_id)
        assert [(r["field"], r["page_number"]) for r in rows] == [
            ("date", 1),
            ("date", 2),
            ("total", 1),
            ("total", 2),
        ]
        best_total = rows[3]
        assert list(best_total) == list(VIEW_COLUMNS)
        assert best_total | {"answer_id": None, "extracted_at": None} == {
            "answer_id": None,
            "document_uri": "s3://b/in/a.pdf",
            "document_sha256": DOC_SHA,
            "field": "total",
            "question": "What is the total?",
            "answer": "total on p2",
            "value": "total2",
            "confidence": pytest.approx(0.7),
            "needs_review": False,
            "page_number": 2,
            "is_best": True,
            "crop_x1": 10.0,
            "crop_y1": 20.0,
            "crop_x2": 40.0,
            "crop_y2": 30.0,
            "crop_uri": "s3://b/crops/total2.png",
            "policy": "center",
            "reader": "ocr:rapidocr@768",
            "template_set": "receipt@v1",
            "template_set_hash": TS_HASH,
            "run_id": run_id,
            "extracted_at": None,
        }
        assert datetime.fromisoformat(best_total["extracted_at"]).tzinfo == UTC
        json.dumps(rows)  # ready for a Prefect table artifact
        assert rows[0]["crop_x1"] is None and rows[0]["is_best"] is True  # whole page
        assert [r["needs_review"] for r in rows] == [True, False, True, False]
        assert queries.run_fields(s, run_id, limit=1) == rows[:1]

        best = (
            s.execute(sa.select(document_fields).order_by(document_fields.c.field)).mappings().all()
        )
        assert [(r["field"], r["page_number"]) for r in best] == [("date", 1), ("total", 2)]
        pixels = s.scalars(
            sa.select(Answer).where(Answer.field == "total", Answer.page_number == 2)
        ).one()
        assert (pixels.crop_px_x1, pixels.crop_px_y2, pixels.page_width) == (100, 600, 1000)


def test_second_save_of_the_same_key_writes_nothing(sessions):
    with sessions.begin() as s:
        run_id = _start(s)
        doc_id = _document(s)
        first = _save(s, run_id, doc_id, policy="center", reader="ocr:rapidocr@768", answers=ANSWERS)
    with sessions.begin() as s:
        with pytest.raises(AlreadyExtracted) as caught:
            _save(s, run_id, doc_id, policy="center", reader="ocr:rapidocr@768", answers=ANSWERS[:1])
        assert caught.value.extraction_id == first
        # The transaction is still usable (no aborted Postgres transaction).
        assert s.scalar(sa.select(sa.func.count()).select_from(Answer)) == len(ANSWERS)
        assert s.scalar(sa.select(sa.func.count()).select_from(Extraction)) == 1


def test_concurrent_saves_of_one_key_leave_one_extraction(sessions):
    with sessions.begin() as s:
        run_id = _start(s)
        doc_id = _document(s)
    key = dict(
        run_id=run_id,
        document_id=doc_id,
        template_set_hash=TS_HASH,
        policy="center",
        reader="ocr:rapidocr@768",
        answers=ANSWERS,
    )
    outcome: list[object] = []

    def second_run() -> None:
        with sessions.begin() as s2:
            try:
                outcome.append(queries.save_extraction(s2, **key))
            except AlreadyExtracted as exc:
                outcome.append(exc)

    with sessions.begin() as s1:
        first = queries.save_extraction(s1, **key)
        other = threading.Thread(target=second_run)
        other.start()
        time.sleep(0.3)  # the second insert now waits on the first's uncommitted row/lock
    other.join(timeout=30)
    assert isinstance(outcome[0], AlreadyExtracted) and outcome[0].extraction_id == first
    with sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Answer)) == len(ANSWERS)


def test_answer_keys_are_enforced(sessions):
    with sessions.begin() as s:
        run_id = _start(s)
        doc_id = _document(s)
    with sessions.begin() as s, pytest.raises(ValueError, match="is_best"):
        two_best = [_answer(1, "total", best=True), _answer(2, "total", best=True)]
        _save(s, run_id, doc_id, policy="p", reader="r", answers=two_best)
    with pytest.raises(IntegrityError), sessions.begin() as s:
        same_page_twice = [_answer(1, "total", best=True), _answer(1, "total", best=False)]
        _save(s, run_id, doc_id, policy="p", reader="r", answers=same_page_twice)
    with pytest.raises(ValueError, match="set all of"):
        AnswerRow(**{**_answer(1, "x", best=True).to_dict(), "crop_x2": None})


def test_upsert_document_keeps_one_row_per_content(sessions):
    with sessions.begin() as s:
        first = _document(s, uri="s3://b/old.pdf", page_count=3)
        again = _document(s, uri="s3://b/new.pdf", page_count=None)
        assert again == first
        row = s.execute(
            sa.text("SELECT uri, media_type, size_bytes, page_count FROM documents")
        ).one()
        assert tuple(row) == ("s3://b/new.pdf", "application/pdf", 1234, 3)
        # None keeps what is known: how the flow sets page_count after rendering.
        same = queries.upsert_document(
            s, sha256=DOC_SHA, uri="s3://b/new.pdf", media_type=None, size_bytes=None, page_count=5
        )
        assert same == first
        row = s.execute(sa.text("SELECT media_type, size_bytes, page_count FROM documents")).one()
        assert tuple(row) == ("application/pdf", 1234, 5)
        with pytest.raises(ValueError, match="needs media_type and size_bytes"):
            queries.upsert_document(
                s, sha256="ef" * 32, uri="x", media_type=None, size_bytes=None, page_count=1
            )


def test_lost_race_inside_a_savepoint_keeps_the_transaction(sessions):
    """The flow's pattern: upsert, save in a savepoint, record the outcome, one commit."""
    with sessions.begin() as s:
        run_id = _start(s)
        doc_id = _document(s)
        key = dict(
            run_id=run_id,
            document_id=doc_id,
            template_set_hash=TS_HASH,
            policy="center",
            reader="r",
            answers=ANSWERS,
        )
        queries.save_extraction(s, **key)
    with sessions.begin() as s:
        _document(s, page_count=2)
        with pytest.raises(AlreadyExtracted), s.begin_nested():
            queries.save_extraction(s, **key)
        queries.record_run_document(
            s,
            run_id,
            uri="s3://b/in/a.pdf",
            document_id=doc_id,
            status="skipped",
            error="extracted meanwhile by another run",
        )
    with sessions() as s:
        assert queries.run_summary(s, run_id)["documents_by_status"]["skipped"] == 1
        assert s.scalar(sa.select(sa.func.count()).select_from(Answer)) == len(ANSWERS)


def test_template_set_content_is_stored_as_json(sessions):
    with sessions.begin() as s:
        queries.ensure_template_set(s, "12" * 32, "x@v1", '{"templates": [{"name": "x"}]}')
        stored = s.get(TemplateSetRow, "12" * 32)
        assert stored.content == {"templates": [{"name": "x"}]}


def test_failures_and_run_summary(sessions):
    with sessions.begin() as s:
        run_id = _start(s)
        doc_id = _document(s)
        queries.record_run_document(
            s, run_id, uri="s3://b/in/a.pdf", document_id=doc_id, status="skipped"
        )
        queries.record_run_document(
            s, run_id, uri="s3://b/in/bad.pdf", status="failed", error="timeout"
        )
        # A retried task records the same object again: the record is replaced, not duplicated.
        queries.record_run_document(
            s,
            run_id,
            uri="s3://b/in/bad.pdf",
            status="failed",
            error="DocumentError: encrypted PDF",
            seconds=0.2,
        )
        queries.finish_run(
            s,
            run_id,
            status="completed_with_failures",
            documents_total=2,
            documents_skipped=1,
            documents_failed=1,
            wall_seconds=3.5,
        )

    with sessions() as s:
        summary = queries.run_summary(s, run_id)
    assert summary["status"] == "completed_with_failures"
    assert (
        summary["documents_total"],
        summary["documents_failed"],
        summary["answers_written"],
    ) == (2, 1, 0)
    assert summary["wall_seconds"] == 3.5 and summary["parameters"] == {"limit": 10}
    finished, started = (datetime.fromisoformat(summary[k]) for k in ("finished_at", "started_at"))
    assert finished.tzinfo == UTC and finished >= started
    json.dumps(summary)
    assert summary["documents_by_status"] == {"extracted": 0, "empty": 0, "skipped": 1, "failed": 1}
    assert summary["failures"] == [
        {"uri": "s3://b/in/bad.pdf", "error": "DocumentError: encrypted PDF"}
    ]


def test_bad_arguments_raise_specific_errors(sessions):
    with sessions.begin() as s:
        run_id = _start(s)
        with pytest.raises(TypeError, match="documents_totl"):
            queries.finish_run(s, run_id, status="completed", documents_totl=1)
        with pytest.raises(ValueError, match="run status"):
            queries.finish_run(s, run_id, status="done")
        with pytest.raises(RunNotFoundError):
            queries.finish_run(s, run_id + 100, status="failed", error="x")
        with pytest.raises(RunNotFoundError):
            queries.run_summary(s, run_id + 100)
        with pytest.raises(ValueError, match="document status"):
            queries.record_run_document(s, run_id, uri="x", status="ok")


def test_deleting_an_extraction_cascades_to_its_answers(sessions):
    with sessions.begin() as s:
        run_id = _start(s)
        doc_id = _document(s)
        extraction_id = _save(s, run_id, doc_id, policy="center", reader="r", answers=ANSWERS)
    with sessions.begin() as s:
        s.execute(sa.delete(Extraction).where(Extraction.id == extraction_id))
    with sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Answer)) == 0
