"""Prefect task of the evaluate flow: one call into `cropvlm.evaluation`, on the GPU tag.

The whole evaluation is one task: every configuration shares the rendered pages, and the
`gpu` tag's concurrency limit keeps it from competing with extraction for the device.
Readers and policies come from the per-worker cache (`app.resources`).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from app.resources import get_policy, get_reader
from cropvlm.evaluation import evaluate
from tasks.extract import GPU_TAG


@task(tags=[GPU_TAG])
def run_evaluation(folder: str | None, synthetic: int, seed: int, templates: list[str] | None, limit: int | None,
                   out: str | None, readers: list[str] | None, policies: list[str] | None,
                   full_resolution: bool, batch_documents: int, dpi: int) -> dict:
    """Returns {"rows": results.csv rows as dicts, "markdown": the report, "summary", "paths"}."""
    logger = get_run_logger()
    result = evaluate(
        folder, synthetic=synthetic, seed=seed, templates=templates, limit=limit, out=out, readers=readers,
        policies=policies, full_resolution=full_resolution, batch_documents=batch_documents, dpi=dpi,
        resolve_reader=get_reader, resolve_policy=get_policy, progress=logger.info,
    )
    return {"rows": result.csv_rows(), "markdown": result.markdown, "summary": result.summary,
            "paths": {k: str(v) for k, v in result.paths.items()}}
