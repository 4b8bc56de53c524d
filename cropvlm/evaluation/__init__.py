"""Evaluation: every reader with every crop policy on labelled documents, side by side.

    from cropvlm.evaluation import evaluate
    result = evaluate("data/sroie_dev", templates=["templates/receipt.yaml"], out="eval-out")

Plain Python (no Prefect, no SQL): `cropvlm.labels` loads and validates, `runner` runs the
configurations, `metrics` scores and aggregates, `report` writes CSV/markdown/PNG.
"""

from cropvlm.evaluation.api import Evaluation, evaluate
from cropvlm.evaluation.metrics import ALL, CSV_COLUMNS, MetricRow, Scored, aggregate
from cropvlm.evaluation.runner import DEFAULT_POLICIES, Config, plan_configs, run_configs

__all__ = ["ALL", "CSV_COLUMNS", "DEFAULT_POLICIES", "Config", "Evaluation", "MetricRow", "Scored", "aggregate",
           "evaluate", "plan_configs", "run_configs"]
