"""Candidates with their features for one field of one document: what the head scores
at answer time and, with gold answers, what it learns from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cropvlm.answer_head.candidates import AnswerCandidate, candidates
from cropvlm.answer_head.features import Page, feature_names, featurize
from cropvlm.normalize import exact_match
from cropvlm.readers.answer_rules import extract
from cropvlm.readers.answer_text import question_kind
from cropvlm.templates import FieldSpec


@dataclass(frozen=True)
class FieldCandidates:
    spec: FieldSpec
    candidates: tuple[AnswerCandidate, ...]
    pages: tuple[int, ...]  # 0-based page index of each candidate
    features: np.ndarray  # [n_candidates, n_features]
    rule_text: str  # the rule-based reader's answer ("" when it has none)
    rule_value: str | None
    rule_confidence: float

    def labels(self, gold: str) -> np.ndarray:
        """1 for candidates that match `gold` exactly after normalisation, else 0."""
        return np.array([exact_match(c.text, gold, self.spec.type) for c in self.candidates], dtype=np.float32)


def field_candidates(pages: Sequence[Page], spec: FieldSpec) -> FieldCandidates:
    """Candidates of every page of a document for `spec`, with features."""
    kind = question_kind(spec.question)
    found: list[AnswerCandidate] = []
    where: list[int] = []
    blocks = []
    best_rule = None
    for index, page in enumerate(pages):
        rule = extract(page.lines, spec, "page")
        if rule.text and (best_rule is None or rule.confidence > best_rule.confidence):
            best_rule = rule
        cands = candidates(page.lines, spec, page.down)
        if not cands:
            continue
        blocks.append((page, cands, rule))
        found += cands
        where += [index] * len(cands)
    width = len(feature_names())
    rows = [featurize(page, spec.type, kind, spec.aliases, cands, rule.value if rule.text else None, rule.strength)
            for page, cands, rule in blocks]
    features = np.concatenate(rows) if rows else np.zeros((0, width), dtype=np.float32)
    if len(pages) > 1 and len(features):
        # Page position as one more signal: totals print on the last page, headers on the first.
        last = np.array([float(i == len(pages) - 1) for i in where], dtype=np.float32)
        first = np.array([float(i == 0) for i in where], dtype=np.float32)
    else:
        last = np.ones(len(features), dtype=np.float32)
        first = np.ones(len(features), dtype=np.float32)
    features = np.column_stack([features, first, last]) if len(features) else np.zeros((0, width + 2), np.float32)
    return FieldCandidates(spec, tuple(found), tuple(where), features,
                           best_rule.text if best_rule else "", best_rule.value if best_rule else None,
                           best_rule.confidence if best_rule else 0.0)


def all_feature_names() -> list[str]:
    return feature_names() + ["first_page", "last_page"]
