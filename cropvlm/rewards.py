"""Rewards for training the crop policy: plain functions with one contract.

    reward(completions: list[str], **columns) -> list[float | None]

`completions` are the policy's texts (`"[x1, y1, x2, y2]."`), one per sample; `columns` are
per-sample lists the trainer fills in (the reader's answers from the crop, the gold answers,
their types, the reader's log-likelihood of the gold answer). `None` means "not applicable
to this sample" (e.g. no log-likelihood from a reader that cannot score), and is left out
of the weighted sum rather than counted as zero. The trainer weights rewards by name from
its config and logs each under its own name, as TRL's GRPO trainer does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from cropvlm.box import Box
from cropvlm.errors import BoxError
from cropvlm.normalize import anls, exact_match

Reward = Callable[..., list]


def _box(text: str) -> Box | None:
    try:
        return Box.parse(text)
    except BoxError:
        return None


def format_reward(completions: Sequence[str], **_: object) -> list[float | None]:
    """1 for a valid box (4 numbers in [0, 100], x2 > x1, y2 > y1), else 0."""
    return [1.0 if _box(text) is not None else 0.0 for text in completions]


def exact_reward(
    completions: Sequence[str],
    *,
    predictions: Sequence[str | None],
    gold: Sequence[str | None],
    answer_types: Sequence[str],
    **_: object,
) -> list[float | None]:
    """1 when the reader's answer equals the gold answer after normalisation by type, else 0:
    the metric promotion is judged on. (`accuracy`'s ANLS credit for near misses pays a crop
    whose zoom glues a name's words nearly as well as one that reads it right.) None without
    a gold answer."""
    return [None if answer is None or not str(answer).strip() else float(exact_match(prediction, answer, answer_type))
            for prediction, answer, answer_type in zip(predictions, gold, answer_types, strict=True)]


def accuracy_reward(completions: Sequence[str], **columns) -> list[float | None]:
    """The frozen reader's answer from the crop against the gold answer: 1 when equal after
    normalisation by type (`exact_reward`'s columns), else ANLS (0 below its 0.5 threshold).
    None without a gold answer."""
    exact = exact_reward(completions, **columns)
    return [e if e != 0.0 else anls(prediction, answer)
            for e, prediction, answer in zip(exact, columns["predictions"], columns["gold"], strict=True)]


def likelihood_reward(
    completions: Sequence[str], *, gold_loglik: Sequence[float | None], **_: object
) -> list[float | None]:
    """The reader's log-likelihood of the gold answer given [page, crop] (the paper's best
    reward); None where the reader cannot score (OCR, APIs without log-probs)."""
    return [None if value is None else float(value) for value in gold_loglik]


def area_cost(completions: Sequence[str], **_: object) -> list[float | None]:
    """Minus the fraction of the page the box covers: a pressure towards tighter crops.
    None for an invalid box (the format reward already punishes it)."""
    boxes = [_box(text) for text in completions]
    return [None if box is None else -box.area for box in boxes]


BUILT_IN: dict[str, Reward] = {
    "format": format_reward,
    "accuracy": accuracy_reward,
    "exact": exact_reward,
    "likelihood": likelihood_reward,
    "area": area_cost,
}


def combine(rewards: Mapping[str, Sequence[float | None]], weights: Mapping[str, float]) -> list[float]:
    """Weighted sum per sample over the named rewards; a None term contributes nothing."""
    unknown = set(weights) - set(rewards)
    if unknown:
        raise KeyError(f"weights name rewards that were not computed: {sorted(unknown)}")
    lengths = {len(values) for values in rewards.values()}
    if len(lengths) > 1:
        raise ValueError(f"rewards have different lengths: { {k: len(v) for k, v in rewards.items()} }")
    size = lengths.pop() if lengths else 0
    totals = [0.0] * size
    for name, weight in weights.items():
        for i, value in enumerate(rewards[name]):
            if value is not None:
                totals[i] += weight * value
    return totals
