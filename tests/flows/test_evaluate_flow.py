"""The `evaluate` flow: runs the core evaluation, publishes its report, answers, plot and progress, returns rows."""

from __future__ import annotations

import base64
import csv
import json
import shutil
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

from cropvlm.evaluation import ALL, CSV_COLUMNS
from flows.evaluate import evaluate

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = [str(REPO / "templates/receipt.yaml"), str(REPO / "templates/invoice.yaml")]


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="no tesseract binary")
def test_evaluate_flow_returns_rows_and_publishes_the_table(tmp_path):
    state = evaluate(synthetic=2, templates=TEMPLATES, out=str(tmp_path / "out"), readers=["ocr:tesseract@768"],
                     policies=["full", "oracle"], full_resolution=False, return_state=True)
    rows = state.result()
    assert all(tuple(row) == CSV_COLUMNS for row in rows)
    overall = [(r["reader"], r["policy"], r["n"]) for r in rows if r["field"] == ALL]
    assert overall == [("ocr:tesseract@768", "full", 8), ("ocr:tesseract@768", "oracle@0.04", 8)]
    assert (tmp_path / "out/results.csv").exists() and (tmp_path / "out/accuracy_vs_seconds.png").exists()

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["evaluation", "evaluation-answers", "evaluation-plot", "evaluation-progress"]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    artifacts = {a.key: a for a in found}
    assert {key: a.type for key, a in artifacts.items()} == {
        "evaluation": "markdown", "evaluation-answers": "table", "evaluation-plot": "image",
        "evaluation-progress": "progress"}
    assert "| `ocr:tesseract@768` | `oracle@0.04` | 8 |" in artifacts["evaluation"].data
    assert artifacts["evaluation-progress"].data == 100.0

    # Every answer, one row per document and field, each configuration's answer against the gold one.
    answers = json.loads(artifacts["evaluation-answers"].data)
    with (tmp_path / "out/answers.csv").open() as handle:
        written = list(csv.DictReader(handle))
    assert len(answers) == 8 and len(written) == 16  # 2 documents x 4 fields; x 2 configurations in the CSV
    for line in written:
        row = next(r for r in answers if (r["document"], r["field"]) == (line["doc"], line["field"]))
        assert row["gold"] == line["gold"]
        mark = "right" if line["exact"] == "1" else "WRONG"
        cell = row[f"{line['reader']} / {line['policy']}"]
        assert cell == f"{mark}: {line['prediction']} ({float(line['confidence']):.2f})"

    # The plot, inlined: the PNG written to the folder.
    prefix = "data:image/png;base64,"
    assert artifacts["evaluation-plot"].data.startswith(prefix)
    assert base64.b64decode(artifacts["evaluation-plot"].data[len(prefix):]) == (
        tmp_path / "out/accuracy_vs_seconds.png").read_bytes()


def test_the_evaluation_holds_a_slot_of_the_gpu_limit(tmp_path, monkeypatch):
    """The device guard of extraction and training: while the evaluation runs it holds the one
    slot of the global limit named by `gpu_limit`, and gives it back at the end."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from tasks import evaluate as evaluate_task

    name, slots_taken = "cropvlm-test-evaluate-gpu", []
    real = evaluate_task.evaluate_documents

    def observed(params, **kwargs):
        with get_client(sync_client=True) as client:
            slots_taken.append(client.read_global_concurrency_limit_by_name(name).active_slots)
        return real(params, **kwargs)

    monkeypatch.setattr(evaluate_task, "evaluate_documents", observed)
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        try:
            rows = evaluate(synthetic=1, templates=TEMPLATES, out=str(tmp_path / "out"), readers=["ocr:rapidocr@256"],
                            policies=["full"], full_resolution=False, gpu_limit=name)
            limit = client.read_global_concurrency_limit_by_name(name)
        finally:
            client.delete_global_concurrency_limit_by_name(name)
    assert slots_taken == [1] and limit.active_slots == 0
    assert [(r["reader"], r["policy"]) for r in rows if r["field"] == ALL] == [("ocr:rapidocr@256", "full")]
