"""The `evaluate` flow: readers x crop policies on labelled documents, side by side.

    cropvlm evaluate data/sroie_dev --templates templates/receipt.yaml     # by hand (no Prefect)
    prefect deployment run evaluate/...                                   # as a flow

Thin: one task calls `cropvlm.evaluation.evaluate` (which writes results.csv, results.md,
answers.csv and the PNG plot under `out`), then the flow publishes the markdown table as
a Prefect artifact (key `evaluation`) and returns the results.csv rows.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from tasks.evaluate import run_evaluation


@flow(name="evaluate")
def evaluate(
    folder: str | None = None,
    synthetic: int = 0,
    seed: int = 0,
    templates: list[str] | None = None,
    limit: int | None = None,
    out: str | None = "eval-out",
    readers: list[str] | None = None,
    policies: list[str] | None = None,
    full_resolution: bool = True,
    batch_documents: int = 8,
    dpi: int = 150,
) -> list[dict]:
    """Rows of results.csv: reader, policy, field (or ALL), n, exact, anls, seconds/pixels per answer."""
    outcome = run_evaluation(folder, synthetic, seed, templates, limit, out, readers, policies, full_resolution,
                             batch_documents, dpi)
    create_markdown_artifact(outcome["markdown"], key="evaluation",
                             description=f"Evaluation of {outcome['summary']['source']}")
    return outcome["rows"]
