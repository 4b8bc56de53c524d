"""Prefect task of the evaluate flow: one call into `cropvlm.evaluation`, holding the device slot.

The whole evaluation is one task: every configuration shares the rendered pages, and it is
model work from end to end, so it holds one slot of the global limit `gpu_limit`
(tasks/device.py) and takes turns with extraction and training on the device.
Readers and policies come from the per-worker cache (`app.resources`).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from app.evaluate import evaluate_documents
from app.params import EvaluateParams
from tasks.device import GPU_TAG, model_slot


@task(tags=[GPU_TAG])
def run_evaluation(params: EvaluateParams, gpu_limit: str | None) -> dict:
    """Returns {"rows": results.csv rows as dicts, "markdown": the report, "summary", "paths"}."""
    with model_slot(gpu_limit)():
        result = evaluate_documents(params, progress=get_run_logger().info)
    return {"rows": result.csv_rows(), "markdown": result.markdown, "summary": result.summary,
            "paths": {k: str(v) for k, v in result.paths.items()}}
