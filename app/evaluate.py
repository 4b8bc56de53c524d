"""Evaluate readers x crop policies with an `EvaluateParams`, models from the per-worker cache.

The `evaluate` flow's task and `cropvlm evaluate` both call this (the work itself is
`cropvlm.evaluation.evaluate`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from app.params import EvaluateParams
from app.resources import get_policy, get_reader
from cropvlm.evaluation import Evaluation, evaluate


def evaluate_documents(params: EvaluateParams, *, progress: Callable[[str], None] | None,
                       documents_done: Callable[[int, int], None] | None = None) -> Evaluation:
    return evaluate(**params.model_dump(exclude={"gpu_limit"}), resolve_reader=get_reader,
                    resolve_policy=get_policy, progress=progress, documents_done=documents_done)


def png_data_uri(path: str | Path | None) -> str | None:
    """The plot inlined as a data: URI, so the Prefect UI shows it without a file server."""
    if path is None or not Path(path).is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
