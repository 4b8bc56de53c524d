"""The `evaluate` flow: runs the core evaluation, publishes a markdown artifact, returns rows."""

from __future__ import annotations

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
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["evaluation"]), flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    assert len(artifacts) == 1 and artifacts[0].type == "markdown"
    assert "| `ocr:tesseract@768` | `oracle@0.04` | 8 |" in artifacts[0].data


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
