"""Evaluate readers x crop policies with an `EvaluateParams`, models from the per-worker cache.

The `evaluate` flow's task and `cropvlm evaluate` both call this (the work itself is
`cropvlm.evaluation.evaluate`).
"""

from __future__ import annotations

from collections.abc import Callable

from app.params import EvaluateParams
from app.resources import get_policy, get_reader
from cropvlm.evaluation import Evaluation, evaluate


def evaluate_documents(params: EvaluateParams, *, progress: Callable[[str], None] | None) -> Evaluation:
    return evaluate(**params.model_dump(exclude={"gpu_limit"}), resolve_reader=get_reader,
                    resolve_policy=get_policy, progress=progress)
