"""Evaluation: every reader with every crop policy on labelled documents, side by side.

    from cropvlm.evaluation import evaluate
    result = evaluate("data/sroie_dev", templates=["templates/receipt.yaml"], out="eval-out")

Plain Python (no Prefect, no SQL): `labels` loads and validates, `runner` runs the
configurations, `metrics` scores and aggregates, `report` writes CSV/markdown/PNG.
"""

from cropvlm.evaluation.api import Evaluation, evaluate
from cropvlm.evaluation.labels import Label, LabelError, LabelSet, infer_type, load_labels
from cropvlm.evaluation.metrics import ALL, CSV_COLUMNS, MetricRow, Scored, aggregate
from cropvlm.evaluation.runner import DEFAULT_POLICIES, Config, plan_configs, run_configs

__all__ = ["ALL", "CSV_COLUMNS", "DEFAULT_POLICIES", "Config", "Evaluation", "Label", "LabelError", "LabelSet",
           "MetricRow", "Scored", "aggregate", "evaluate", "infer_type", "load_labels", "plan_configs",
           "run_configs"]
