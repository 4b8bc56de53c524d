"""Prefect task of the evaluate flow: one call into `cropvlm.evaluation`, on the GPU tag.

The whole evaluation is one task: every configuration shares the rendered pages, and the
`gpu` tag's concurrency limit keeps it from competing with extraction for the device.
Readers and policies come from the per-worker cache (`app.resources`).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from app.evaluate import evaluate_documents
from app.params import EvaluateParams
from tasks.device import GPU_TAG


@task(tags=[GPU_TAG])
def run_evaluation(params: EvaluateParams) -> dict:
    """Returns {"rows": results.csv rows as dicts, "markdown": the report, "summary", "paths"}."""
    result = evaluate_documents(params, progress=get_run_logger().info)
    return {"rows": result.csv_rows(), "markdown": result.markdown, "summary": result.summary,
            "paths": {k: str(v) for k, v in result.paths.items()}}
