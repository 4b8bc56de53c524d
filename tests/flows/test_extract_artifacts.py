"""What the extract flow shows an operator, read back through the Prefect API: its summary,
document × field table and failures as artifacts (checked against the database), its final
state's name, its batch task names; empty documents. A reader that answers by rule stands
in for OCR so the flow runs in seconds."""

from __future__ import annotations

import json
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId

from app import extract as extraction
from cropvlm.readers.base import Answer
from flows.extract import extract
from tests.flows.documents import bad_documents, blank_documents, good_documents, write_folder
from tests.flows.test_extract_flow import RECEIPT, query

# field -> (answer, confidence) on a page with anything on it; a white page gets no answers
ANSWERS = {"company": ("ACME", 0.9), "date": ("", 0.0), "address": ("1 Main St", 0.8), "total": ("12.50", 0.31)}


class RuleReader:
    version = "rule-reader"

    def answer(self, requests):
        blank = [r.page.convert("L").getextrema() == (255, 255) for r in requests]
        return [Answer("", None, 0.0) if white else Answer(*ANSWERS[r.spec.field][:1], None, ANSWERS[r.spec.field][1])
                for r, white in zip(requests, blank)]


def run_flow(tmp_path, db_url, monkeypatch):
    monkeypatch.setattr(extraction, "get_reader", lambda spec: RuleReader())
    docs = {"a-receipt.png": good_documents()["scan-named-as.pdf"], "blank.png": blank_documents()["blank.png"],
            "bad/corrupt.pdf": bad_documents()["bad/corrupt.pdf"]}
    source = write_folder(tmp_path / "docs", docs)
    return extract(source=str(source), templates=[RECEIPT], policy="full", reader="rule", database_url=db_url,
                   artifacts_uri=str(tmp_path / "artifacts"), batch_documents=2, gpu_limit=None, return_state=True)


def markdown_rows(markdown: str) -> dict[str, str]:
    """| name | value | lines of a markdown table -> {name: value}."""
    cells = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("| ")]
    return {name.strip(): value.strip() for name, value in cells if name.strip()}


def test_artifacts_state_and_task_names_tell_the_runs_story(tmp_path, db_url, monkeypatch):
    state = run_flow(tmp_path, db_url, monkeypatch)
    summary = state.result()
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        artifacts = {a.key: a for a in client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))}
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))

    assert (flow_run.state.type.value, flow_run.state.name) == ("COMPLETED", "Completed with failures")
    assert set(artifacts) == {"extract-progress", "extract-summary", "extracted-fields", "extract-failures"}
    assert {"batch 1: a-receipt.png … (2 docs)", "batch 2: bad/corrupt.pdf"} <= {t.name for t in task_runs}

    # the summary's numbers are the database's
    run_id = summary["id"]
    shown = markdown_rows(artifacts["extract-summary"].data)
    by_status = dict(query(db_url, "SELECT status, count(*) FROM run_documents WHERE run_id = :r GROUP BY status",
                           r=run_id))
    assert by_status == {"extracted": 1, "empty": 1, "failed": 1}
    assert (shown["extracted"], shown["empty (no answer on any page)"], shown["failed"]) == ("1", "⚠ 1", "1")
    assert shown["skipped (done before)"] == "0"
    total, pages, answers, status = query(
        db_url, "SELECT documents_total, pages_processed, answers_written, status FROM extraction_runs "
                "WHERE id = :r", r=run_id)[0]
    assert (shown["documents"], shown["pages"], shown["answers"]) == (str(total), str(pages), str(answers)) == (
        "3", "2", "8")
    assert artifacts["extract-summary"].data.startswith(f"## Run {run_id}: completed with failures")
    assert status == "completed_with_failures"
    assert (shown["policy"], shown["reader"], shown["source"]) == (
        "`full`", "`rule` → `rule-reader`", f"`{tmp_path / 'docs'}`")
    assert shown["database"] == f"`{db_url}`"  # no password in these URLs; tests/app checks the masking

    # one row per document, a column per field, doubtful answers marked
    fields = json.loads(artifacts["extracted-fields"].data)
    assert [list(row) for row in fields] == [["document", "company", "date", "address", "total"]] * 2
    stored = query(db_url, "SELECT document_uri, field, answer, confidence, needs_review FROM document_fields "
                           "WHERE run_id = :r", r=run_id)
    assert len(stored) == 8
    by_name = {row["document"]: row for row in fields}
    for uri, field, answer, confidence, needs_review in stored:
        cell = by_name[Path(uri).name][field]
        assert cell.endswith(f"({confidence:.2f})") and cell.startswith("⚠ ") == bool(needs_review)
        assert (answer or "empty") in cell
    assert by_name["a-receipt.png"] == {"document": "a-receipt.png", "company": "ACME (0.90)",
                                        "date": "⚠ empty (0.00)", "address": "1 Main St (0.80)",
                                        "total": "⚠ 12.50 (0.31)"}

    failures = json.loads(artifacts["extract-failures"].data)
    stored_failures = query(db_url, "SELECT uri, error FROM run_documents WHERE run_id = :r AND status = 'failed'",
                            r=run_id)
    assert failures == [{"document": "bad/corrupt.pdf", "error": stored_failures[0].error}]
    assert "corrupt PDF" in failures[0]["error"]


def test_an_empty_document_is_saved_flagged_and_not_extracted_again(tmp_path, monkeypatch):
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first = run_flow(tmp_path, db_url, monkeypatch).result()
    assert first["documents_by_status"]["empty"] == 1 and first["documents_extracted"] == 1
    assert first["empty"] == [{"uri": str(tmp_path / "docs/blank.png"),
                               "error": "no answer on any page: blank or unreadable pages?"}]
    assert query(db_url, "SELECT count(*) FROM answers a JOIN documents d ON d.id = a.document_id "
                         "WHERE d.uri LIKE '%blank.png'")[0][0] == 4  # saved, each one needs review
    again = run_flow(tmp_path, db_url, monkeypatch)
    assert again.name == "Completed with failures"  # corrupt.pdf fails again; nothing else is redone
    assert again.result()["documents_by_status"] == {"extracted": 0, "empty": 0, "skipped": 2, "failed": 1}
