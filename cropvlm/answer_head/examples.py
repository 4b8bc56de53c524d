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
from cropvlm.readers.words import split_glued
from cropvlm.templates import FieldSpec


@dataclass(frozen=True)
class FieldCandidates:
    spec: FieldSpec
    candidates: tuple[AnswerCandidate, ...]
    features: np.ndarray  # [n_candidates, n_features]
    rule_text: str  # the rule-based reader's answer ("" when it has none)
    pages: tuple[int, ...] = ()  # the page each candidate is on

    def answer(self, index: int) -> str:
        """Candidate `index` as the reader answers it: free text with its glued words cut
        (`readers.words`), so the head learns to pick what the reader will say."""
        text = self.candidates[index].text
        return split_glued(text) if self.spec.type == "text" else text

    def labels(self, gold: str) -> np.ndarray:
        """1 for candidates whose answer matches `gold` exactly after normalisation, else 0."""
        return np.array([exact_match(self.answer(i), gold, self.spec.type) for i in range(len(self.candidates))],
                        dtype=np.float32)


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
    rows = [featurize(page, spec.type, kind, spec.aliases, cands, rule.value if rule.text else None, rule.strength)
            for page, cands, rule in blocks]
    rule_text = best_rule.text if best_rule else ""
    if not rows:
        return FieldCandidates(spec, (), np.zeros((0, len(all_feature_names())), np.float32), rule_text, ())
    # Page position as one more signal: totals print on the last page, headers on the first.
    first = np.array([i == 0 for i in where], dtype=np.float32)
    last = np.array([i == len(pages) - 1 for i in where], dtype=np.float32)
    features = np.column_stack([np.concatenate(rows), first, last])
    return FieldCandidates(spec, tuple(found), features, rule_text, tuple(where))


def all_feature_names() -> list[str]:
    return feature_names() + ["first_page", "last_page"]


def zoom_feature_names() -> list[str]:
    """A zoomed group's columns: a candidate's features and which read it came from."""
    return all_feature_names() + ["zoomed"]
