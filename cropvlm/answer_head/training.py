"""Fit an answer head on documents with gold answers.

Each (document, field) gives a group of candidates, labelled 1 where the candidate equals
the gold answer after normalisation. One LightGBM LambdaRank booster per answer type learns
to rank each group's right candidate first: a ranking objective is what picking one answer
among a page's candidates needs, and on real receipts it chose better and varied less with
the seed than a binary classifier of candidates (reports/answer_head/README.md). Confidence is calibrated on out-of-fold picks: the documents
are split into folds, each fold's picks are scored by boosters that never saw it, and an
isotonic regression maps the pick's score to how often such picks were right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from cropvlm.answer_head.examples import FieldCandidates
from cropvlm.answer_head.model import TYPES, AnswerHead, Calibration
from cropvlm.errors import TrainingError


@dataclass(frozen=True)
class HeadConfig:
    rounds: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_data_in_leaf: int = 10
    folds: int = 4  # for the out-of-fold calibration
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.num_leaves < 2 or self.folds < 2 or not 0 < self.learning_rate <= 1:
            raise TrainingError(f"bad head config {self}: rounds >= 1, num_leaves >= 2, folds >= 2, "
                                "0 < learning_rate <= 1")

    def lightgbm(self) -> dict:
        return {"objective": "lambdarank", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
                "min_data_in_leaf": self.min_data_in_leaf, "seed": self.seed, "verbose": -1, "num_threads": 1,
                "deterministic": True}


@dataclass(frozen=True)
class Example:
    doc: str
    field: FieldCandidates  # the page's candidates
    gold: str
    zoomed: FieldCandidates | None = None  # page and zoomed-band candidates (`zoom.combined`), when read


def fit_head(examples: Sequence[Example], config: HeadConfig = HeadConfig(), trained_on: str = "") -> AnswerHead:
    """Boosters for every answer type with a positive candidate in `examples`, calibrated."""
    by_type: dict[str, list[Example]] = {}
    for ex in examples:
        by_type.setdefault(ex.field.spec.type, []).append(ex)
    boosters, calibration = {}, {}
    for kind in TYPES:
        group = [ex for ex in by_type.get(kind, []) if len(ex.field.candidates)]
        if not any(ex.field.labels(ex.gold).any() for ex in group):
            continue
        boosters[kind] = _fit(group, config)
        calibration[kind] = _calibrate(group, config)
    if not boosters:
        raise TrainingError("no example has a candidate equal to its gold answer: nothing to learn from")
    docs = {ex.doc for ex in examples}
    head_config = {"version": "", "trained_on": trained_on, "documents": len(docs), "answers": len(examples),
                   "settings": asdict(config)}
    return AnswerHead(boosters, calibration, head_config)


def fit_zooming_head(examples_for: Callable[[AnswerHead | None], Sequence[Example]],
                     config: HeadConfig = HeadConfig(), trained_on: str = "", zoom: bool = True) -> AnswerHead:
    """Page boosters from `examples_for(None)`, then zoom boosters from `examples_for(head)`:
    the same labels with the band the reader would read around this head's own picks."""
    head = fit_head(examples_for(None), config, trained_on)
    return fit_zoom(head, examples_for(head), config) if zoom else head


def fit_zoom(head: AnswerHead, examples: Sequence[Example], config: HeadConfig = HeadConfig()) -> AnswerHead:
    """`head` with zoom boosters, learned from the examples' page and zoomed candidates (read
    around `head`'s own picks: `dataset.label_examples(zoom_head=head)`), for every type with
    a right candidate among them."""
    zoomed = [Example(ex.doc, ex.zoomed, ex.gold) for ex in examples if ex.zoomed is not None]
    for kind in TYPES:
        group = [ex for ex in zoomed if ex.field.spec.type == kind and len(ex.field.candidates)]
        if any(ex.field.labels(ex.gold).any() for ex in group):
            head.zoom_boosters[kind] = _fit(group, config)
            head.zoom_calibration[kind] = _calibrate(group, config)
    head.config["zoom_answers"] = len(zoomed)
    return head


def _fit(examples: Sequence[Example], config: HeadConfig):
    import lightgbm

    X = np.concatenate([ex.field.features for ex in examples])
    y = np.concatenate([ex.field.labels(ex.gold) for ex in examples])
    groups = [len(ex.field.candidates) for ex in examples]  # one query per (document, field)
    return lightgbm.train(config.lightgbm(), lightgbm.Dataset(X, y, group=groups), config.rounds)


def _calibrate(examples: Sequence[Example], config: HeadConfig) -> Calibration:
    """Isotonic map of out-of-fold pick scores to their rate of being right."""
    from sklearn.isotonic import IsotonicRegression

    docs = sorted({ex.doc for ex in examples})
    fold_of = {doc: i % config.folds for i, doc in enumerate(np.random.default_rng(config.seed).permutation(docs))}
    scores, right = [], []
    for fold in range(config.folds):
        train = [ex for ex in examples if fold_of[ex.doc] != fold]
        test = [ex for ex in examples if fold_of[ex.doc] == fold]
        if not test or not any(ex.field.labels(ex.gold).any() for ex in train):
            continue
        booster = _fit(train, config)
        for ex in test:
            p = booster.predict(ex.field.features)
            best = int(np.argmax(p))
            scores.append(float(p[best]))
            right.append(float(ex.field.labels(ex.gold)[best]))
    if len(scores) < 10:
        return Calibration([], [])
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, right)
    return Calibration([float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_])
