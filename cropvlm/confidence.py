"""How far a reader's confidence can be trusted: calibration error and accuracy at coverage.

A confidence is meant as the probability that the answer is right. The expected calibration
error says how far it is from that on average; accuracy at coverage says what a review
threshold buys: the share of answers at or above it, and how many of those are right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(20))  # 0.0, 0.05, ..., 0.95


@dataclass(frozen=True)
class Coverage:
    threshold: float
    share: float  # of all answers, those with confidence >= threshold
    exact: float  # right among them (0 when there are none)


def calibration_error(confidence: Sequence[float], right: Sequence[float], bins: int = 10) -> float:
    """Expected calibration error: |mean confidence - accuracy| per equal-width bin, weighted
    by the bin's size."""
    confidence, right = np.asarray(confidence, dtype=float), np.asarray(right, dtype=float)
    which = np.clip((confidence * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += abs(confidence[members].mean() - right[members].mean()) * members.sum()
    return float(total / max(len(confidence), 1))


def coverage(confidence: Sequence[float], right: Sequence[float],
             thresholds: Sequence[float] = THRESHOLDS) -> list[Coverage]:
    confidence, right = np.asarray(confidence, dtype=float), np.asarray(right, dtype=float)
    out = []
    for t in thresholds:
        above = confidence >= t
        out.append(Coverage(t, float(above.mean()) if len(above) else 0.0,
                            float(right[above].mean()) if above.any() else 0.0))
    return out


def at_threshold(curve: Sequence[Coverage], threshold: float) -> Coverage:
    """The curve's point at the first threshold >= `threshold`."""
    return next((c for c in curve if c.threshold >= threshold), Coverage(threshold, 0.0, 0.0))
