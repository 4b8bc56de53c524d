"""How well a head answers held-out examples: exact match per field beside the rule-based
reader and the candidates' ceiling, calibration error, and accuracy at coverage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cropvlm.answer_head.model import AnswerHead
from cropvlm.answer_head.training import Example
from cropvlm.confidence import at_threshold, calibration_error, coverage
from cropvlm.normalize import exact_match


@dataclass(frozen=True)
class HeadScores:
    n: int
    exact: float  # the head's answers
    rules: float  # the rule-based reader's answers on the same OCR lines
    ceiling: float  # share of fields where some candidate is right: a perfect chooser
    by_field: dict[str, tuple[int, float, float, float]]  # field -> (n, head, rules, ceiling)
    ece: float  # expected calibration error of the confidence, 10 equal-width bins
    coverage: list  # `confidence.Coverage` per threshold

    def at_threshold(self, threshold: float) -> tuple[float, float]:
        """(share answered, exact among them) for answers with confidence >= threshold."""
        point = at_threshold(self.coverage, threshold)
        return point.share, point.exact

    def table(self) -> str:
        rows = ["| field | n | head | rules | ceiling |", "|---|---:|---:|---:|---:|"]
        for field, (n, head, rules, ceiling) in self.by_field.items():
            rows.append(f"| {field} | {n} | {head:.3f} | {rules:.3f} | {ceiling:.3f} |")
        rows.append(f"| ALL | {self.n} | **{self.exact:.3f}** | {self.rules:.3f} | {self.ceiling:.3f} |")
        return "\n".join(rows)


def score_head(head: AnswerHead, examples: Sequence[Example]) -> HeadScores:
    rows = []  # (field, head right, rules right, ceiling, confidence)
    for ex in examples:
        if ex.zoomed is not None and head.zooms(ex.field.spec.type):
            labels, pick = ex.zoomed.labels(ex.gold), head.pick_zoomed(ex.zoomed)
        else:
            labels, pick = ex.field.labels(ex.gold), head.pick(ex.field)
        right = bool(pick.index >= 0 and labels[pick.index])
        rules = exact_match(ex.field.rule_text, ex.gold, ex.field.spec.type) if ex.field.rule_text else False
        rows.append((ex.field.spec.field, right, rules, bool(labels.any()), pick.confidence))
    if not rows:
        return HeadScores(0, 0.0, 0.0, 0.0, {}, 0.0, [])
    by_field = {}
    for field in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == field]
        by_field[field] = (len(mine), *(float(np.mean([r[k] for r in mine])) for k in (1, 2, 3)))
    right = np.array([r[1] for r in rows], dtype=float)
    confidence = np.array([r[4] for r in rows], dtype=float)
    return HeadScores(len(rows), float(right.mean()), float(np.mean([r[2] for r in rows])),
                      float(np.mean([r[3] for r in rows])), by_field, calibration_error(confidence, right),
                      coverage(confidence, right))
