"""Prefect task of the evaluate flow: one call into `cropvlm.evaluation`, holding the device slot.

The whole evaluation is one task: every configuration shares the rendered pages, and it is
model work from end to end, so it holds one slot of the global limit `gpu_limit`
(tasks/device.py) and takes turns with extraction and training on the device.
Readers and policies come from the per-worker cache (`app.resources`).
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from app.evaluate import evaluate_documents, png_data_uri
from app.params import EvaluateParams
from cropvlm.evaluation.report import answers_table
from tasks.device import GPU_TAG, model_slot


@task(tags=[GPU_TAG])
def run_evaluation(params: EvaluateParams, gpu_limit: str | None) -> dict:
    """Returns {"rows": results.csv rows as dicts, "markdown": the report, "summary", "paths",
    "answers": one row per document and field, "plot": the PNG as a data: URI or None};
    a progress artifact (key `evaluation-progress`) follows the documents done."""
    progress_id = create_progress_artifact(0.0, key="evaluation-progress", description="documents evaluated")

    def documents_done(done: int, total: int) -> None:
        update_progress_artifact(progress_id, 100.0 * done / max(total, 1),
                                 description=f"{done} of {total} documents evaluated")

    with model_slot(gpu_limit)():
        result = evaluate_documents(params, progress=get_run_logger().info, documents_done=documents_done)
    return {"rows": result.csv_rows(), "markdown": result.markdown, "summary": result.summary,
            "paths": {k: str(v) for k, v in result.paths.items()}, "answers": answers_table(result.scored),
            "plot": png_data_uri(result.paths.get("plot_png"))}
