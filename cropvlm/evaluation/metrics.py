"""Score answers against labels and aggregate per (reader, policy, field).

- exact: `normalize.exact_match` by the field's type (case, whitespace and punctuation
  ignored; amounts compared as numbers; dates parsed whatever their printed format).
- anls:  `normalize.anls` on the answer text (DocVQA definition, threshold 0.5).
- seconds per answer: the policy + reader time spent on the (document, field), i.e. on
  every page of the document asked that question.
- pixels per answer: what a fixed-resolution reader is shown for it, page + crop, each
  resized to the reader's budget (long side = budget; None = full resolution), or to the
  reader's `input_size(size)` where it has one (an HF reader: what its processor does, e.g.
  Qwen2-VL's pixel cap), summed over the pages asked. This is the VLM view (both images
  always go in) and is what a budget trades: the OCR reader may skip its page read when the
  crop answers, so it is an upper bound there.
- a document on which a configuration failed (the reader raised) counts as wrong answers
  for its labels and is left out of seconds and pixels per answer; the report lists it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from cropvlm.box import Box
from cropvlm.confidence import Coverage, calibration_error, coverage
from cropvlm.crops import budget_size
from cropvlm.normalize import anls, exact_match

ALL = "ALL"


@dataclass(frozen=True)
class Scored:
    """One labelled answer of one configuration."""

    reader: str
    policy: str
    doc: str
    field: str
    answer_type: str
    gold: str
    prediction: str
    page: int  # page whose answer was taken
    exact: bool
    anls: float
    seconds: float
    pixels: int
    error: str | None = None  # the reader or policy failed on this document: counted as wrong
    crop: Box | None = None  # the crop the reader got beside the page for this answer (percent); None: none
    confidence: float = 0.0  # the reader's confidence in its answer, 0-1


@dataclass(frozen=True)
class MetricRow:
    reader: str
    policy: str
    field: str  # a field name, or ALL
    n: int
    exact: float  # share of exact matches, 0-1
    anls: float  # mean ANLS, 0-1
    seconds_per_answer: float
    pixels_per_answer: float


CSV_COLUMNS = ("reader", "policy", "field", "n", "exact", "anls", "seconds_per_answer", "pixels_per_answer")


def score(reader: str, policy: str, doc: str, field: str, answer_type: str, gold: str, prediction: str,
          page: int, seconds: float, pixels: int, crop: Box | None = None, confidence: float = 0.0) -> Scored:
    return Scored(reader, policy, doc, field, answer_type, gold, prediction, page,
                  exact_match(prediction, gold, answer_type), anls(prediction, gold), seconds, pixels, crop=crop,
                  confidence=confidence)


def failed(reader: str, policy: str, doc: str, field: str, answer_type: str, gold: str, error: str) -> Scored:
    """A label whose document the configuration could not answer: wrong, no time or pixels."""
    return Scored(reader, policy, doc, field, answer_type, gold, "", 0, False, 0.0, 0.0, 0, error)


Size = tuple[int, int]


def pixels_seen(page_size: Size, crop_size: Size | None, budget: int | None = None, *,
                input_size: Callable[[Size], Size] | None = None) -> int:
    """Pixels a fixed-resolution reader is shown: the page, plus the crop if there is one,
    each at `input_size(size)` if given, else resized to `budget`."""
    resize = input_size or (lambda size: budget_size(size, budget))
    width, height = resize(page_size)
    total = width * height
    if crop_size is not None:
        width, height = resize(crop_size)
        total += width * height
    return total


def aggregate(scored: Iterable[Scored], field_order: Sequence[str] = ()) -> list[MetricRow]:
    """Rows per (reader, policy) in first-seen order: each field (in `field_order`, then
    first-seen), then ALL over every labelled answer of that configuration."""
    groups: dict[tuple[str, str], list[Scored]] = defaultdict(list)
    for item in scored:
        groups[(item.reader, item.policy)].append(item)
    rows: list[MetricRow] = []
    for (reader, policy), items in groups.items():
        seen = list(dict.fromkeys(item.field for item in items))
        fields = [f for f in field_order if f in seen] + [f for f in seen if f not in field_order]
        for field in fields:
            rows.append(_row(reader, policy, field, [i for i in items if i.field == field]))
        rows.append(_row(reader, policy, ALL, items))
    return rows


@dataclass(frozen=True)
class ConfidenceRow:
    """How far one configuration's confidences can be trusted (`cropvlm.confidence`)."""

    reader: str
    policy: str
    n: int
    calibration_error: float
    coverage: list[Coverage]  # accuracy at coverage, thresholds 0.0 to 0.95


def confidence_rows(scored: Iterable[Scored]) -> list[ConfidenceRow]:
    """One row per (reader, policy), in first-seen order, over every labelled answer."""
    groups: dict[tuple[str, str], list[Scored]] = defaultdict(list)
    for item in scored:
        groups[(item.reader, item.policy)].append(item)
    rows = []
    for (reader, policy), items in groups.items():
        confidence, right = [i.confidence for i in items], [float(i.exact) for i in items]
        rows.append(ConfidenceRow(reader, policy, len(items), calibration_error(confidence, right),
                                  coverage(confidence, right)))
    return rows


def _row(reader: str, policy: str, field: str, items: Sequence[Scored]) -> MetricRow:
    n = len(items)
    if n == 0:
        return MetricRow(reader, policy, field, 0, 0.0, 0.0, 0.0, 0.0)
    answered = [i for i in items if i.error is None] or items  # failures count as wrong, not as fast
    return MetricRow(
        reader, policy, field, n,
        exact=sum(i.exact for i in items) / n,
        anls=sum(i.anls for i in items) / n,
        seconds_per_answer=sum(i.seconds for i in answered) / len(answered),
        pixels_per_answer=sum(i.pixels for i in answered) / len(answered),
    )
