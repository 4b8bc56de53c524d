"""The `evaluate` flow: readers x crop policies on labelled documents, side by side.

    cropvlm evaluate data/sroie_dev --templates templates/receipt.yaml     # by hand (no Prefect)
    prefect deployment run evaluate/...                                   # as a flow

Thin: one task calls `cropvlm.evaluation.evaluate` (which writes results.csv, results.md,
answers.csv and the PNG plot under `out`) holding a slot of the global concurrency limit
named by `gpu_limit`, as extraction's and training's model calls do, with a progress artifact
(`evaluation-progress`); then the flow publishes the report (`evaluation`), every answer beside
the gold one (`evaluation-answers`) and the plot (`evaluation-plot`) as Prefect artifacts and
returns the results.csv rows.
Parameters: `EvaluateParams` (app/params.py), where their defaults and meaning are.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact

from app.params import EvaluateParams, defaults
from tasks.device import existing_limit
from tasks.evaluate import run_evaluation

DEFAULT = defaults(EvaluateParams)


@flow(name="evaluate")
def evaluate(
    folder: str | None = DEFAULT.folder,
    synthetic: int = DEFAULT.synthetic,
    seed: int = DEFAULT.seed,
    templates: list[str] | None = DEFAULT.templates,
    limit: int | None = DEFAULT.limit,
    out: str | None = DEFAULT.out,
    readers: list[str] | None = DEFAULT.readers,
    policies: list[str] | None = DEFAULT.policies,
    full_resolution: bool = DEFAULT.full_resolution,
    batch_documents: int = DEFAULT.batch_documents,
    dpi: int = DEFAULT.dpi,
    gpu_limit: str | None = DEFAULT.gpu_limit,
) -> list[dict]:
    """Rows of results.csv: reader, policy, field (or ALL), n, exact, anls, seconds/pixels per answer."""
    params = EvaluateParams(**locals())
    outcome = run_evaluation(params, existing_limit(params.gpu_limit, get_run_logger()))
    source = outcome["summary"]["source"]
    create_markdown_artifact(outcome["markdown"], key="evaluation", description=f"Evaluation of {source}")
    create_table_artifact(outcome["answers"], key="evaluation-answers",
                          description=f"Every answer of {source}: gold, then each configuration's (right/WRONG, confidence)")
    if outcome["plot"]:
        create_image_artifact(outcome["plot"], key="evaluation-plot",
                              description=f"Exact match and ANLS against seconds per answer, {source}")
    return outcome["rows"]
