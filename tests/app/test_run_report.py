"""app/run_report.py: the parts of the run's artifacts the flow test does not reach: a masked
password, rows cut off and said so, names of documents and batches."""

from __future__ import annotations

from app.run_report import batch_name, report_run, short_names, summary_markdown
from storage import queries
from storage.db import make_engine, make_session_factory
from tests.app.test_export import runs  # noqa: F401 - the fixture: two runs, three documents


def summary(**changes) -> dict:
    return {"id": 4, "status": "completed", "source": "s3://docs/in/", "policy": "heatmap@1a2b",
            "reader": "ocr:rapidocr@768", "documents_total": 2, "pages_processed": 3, "answers_written": 8,
            "wall_seconds": 2.04, "policy_seconds": 0.31, "reader_seconds": 1.26,
            "parameters": {"policy_spec": "promoted", "templates": ["templates/receipt.yaml"]},
            "documents_by_status": {"extracted": 2, "empty": 0, "skipped": 0, "failed": 0}} | changes


def test_the_summary_masks_the_database_password_and_names_the_resolved_policy():
    text = summary_markdown(summary(), "postgresql://app:s3cret@db.internal/cropvlm")
    assert "s3cret" not in text and "| database | `postgresql://app:***@db.internal/cropvlm` |" in text
    assert "| policy | `promoted` → `heatmap@1a2b` |" in text
    assert "| seconds: wall / policy / reader | 2.0 / 0.3 / 1.3 |" in text


def test_the_tables_say_when_rows_were_cut_off(db_url, runs):  # noqa: F811
    with make_session_factory(make_engine(db_url)).begin() as session:
        for n in range(3):
            queries.record_run_document(session, runs[0], uri=f"s3://b/in/bad{n}.pdf", status="failed", error="x")
        closed = queries.run_summary(session, runs[0])
    report = report_run(db_url, closed, limit=1)
    assert [row["document"] for row in report.fields] == ["a.pdf"]
    assert report.fields_description.endswith(
        f"; the first 1 of 2 (all: `cropvlm export --run {runs[0]} --out x.xlsx`)")
    assert report.failures == [{"document": "bad0.pdf", "error": "x"}]
    assert "the first 1 of 3" in report.failures_description
    assert "first" not in report_run(db_url, closed).fields_description


def test_names_are_short_and_batches_say_what_they_hold():
    assert short_names(["s3://b/in/x/a.pdf", "s3://b/in/b.pdf"]) == {"s3://b/in/x/a.pdf": "x/a.pdf",
                                                                     "s3://b/in/b.pdf": "b.pdf"}
    assert short_names(["/data/in/a.pdf"]) == {"/data/in/a.pdf": "a.pdf"}
    assert batch_name(3, ["a.pdf", "b.pdf"]) == "batch 3: a.pdf … (2 docs)"
    assert batch_name(1, ["x" * 50 + ".pdf"]) == "batch 1: …" + ("x" * 50 + ".pdf")[-39:]
