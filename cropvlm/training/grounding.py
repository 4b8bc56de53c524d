"""Answer grounding: SFT boxes for reviewed answers, found by reading the page.

Reviewed answers (the `labels` table) carry no boxes, yet the SFT warm start is what moves
a policy fast; GRPO alone learns slowly from a few hundred answers. So each answer is
located on its full-resolution page by OCR, with no human drawing anything: the answer
supervises its own box.

- dates and amounts match by value (`12/03/2018` finds `12 MAR 2018`; `60.30` finds
  `RM60.30`), ids and text by their letters and digits (`ACME SDN. BHD.` finds
  `ACMESDN BHD`), over runs of up to `MAX_LINES` consecutive lines (addresses span lines);
  text may differ by OCR noise up to `min_similarity` (normalised Levenshtein).
- a value printed more than once (a total also printed as CASH, or as TOTAL and
  TOTAL INCL. GST) goes to the occurrences on a row with one of the field's labels (all of
  them when none is labelled); when those lie close together (within `MAX_SPREAD` of the
  page height) the box covers them all, else the answer is ambiguous and left without a
  box (GRPO still learns from it: it needs no box).

The result is an `ExampleSet` whose examples have `gold_box` where grounding found one,
and counts of grounded / ambiguous / not found per field for the training report.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from cropvlm.box import Box
from cropvlm.normalize import find_date_spans, levenshtein, parse_amount, parse_date
from cropvlm.readers.answer_rules import alias_pattern, money_amounts
from cropvlm.readers.layout import below, same_row
from cropvlm.readers.ocr_engines import OcrEngine
from cropvlm.readers.ocr_lines import OcrLine
from cropvlm.training.examples import Example, ExampleSet

MAX_LINES = 4  # an address rarely spans more lines
MIN_SIMILARITY = 0.8
MAX_SPREAD = 0.2  # several occurrences of a value share one box if they are this close


@dataclass
class GroundingReport:
    grounded: Counter = dataclasses.field(default_factory=Counter)  # field -> answers given a box
    ambiguous: Counter = dataclasses.field(default_factory=Counter)  # printed several times, far apart
    not_found: Counter = dataclasses.field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"grounded": sum(self.grounded.values()), "ambiguous": sum(self.ambiguous.values()),
                "not_found": sum(self.not_found.values()),
                "by_field": {f: {"grounded": self.grounded[f], "ambiguous": self.ambiguous[f],
                                 "not_found": self.not_found[f]}
                             for f in sorted(set(self.grounded) | set(self.ambiguous) | set(self.not_found))}}


def ground_answers(examples: ExampleSet, engine: OcrEngine,
                   min_similarity: float = MIN_SIMILARITY) -> tuple[ExampleSet, GroundingReport]:
    """A copy of `examples` where answers without a box get one located by OCR."""
    report = GroundingReport()
    lines_of: dict[tuple[str, int], list[OcrLine]] = {}
    out: list[Example] = []
    for example in examples.examples:
        if example.gold_box is not None:
            out.append(example)
            continue
        key = (example.doc, example.page_number)
        page = examples.pages.page(*key)
        if key not in lines_of:
            lines_of[key] = engine.read(page)
        found = locate(lines_of[key], example.answer, example.spec.type, example.spec.aliases,
                       page.size[1], min_similarity)
        counter = report.not_found if found is None else report.ambiguous if found == "ambiguous" else report.grounded
        counter[example.spec.field] += 1
        box = Box.from_pixels(*found, *page.size) if isinstance(found, tuple) else None
        out.append(dataclasses.replace(example, gold_box=box) if box is not None else example)
    return ExampleSet(out, examples.views, examples.pages, dict(examples.skipped)), report


def locate(lines: Sequence[OcrLine], answer: str, answer_type: str, aliases: Sequence[str] = (),
           page_height: float | None = None,
           min_similarity: float = MIN_SIMILARITY) -> tuple[float, float, float, float] | str | None:
    """Pixel box of `answer` among OCR `lines` (reading order), "ambiguous", or None.
    `page_height` (pixels) lets close occurrences of a repeated value share a box."""
    if answer_type in ("date", "amount"):
        matches = _value_matches(lines, answer, answer_type)
        if matches is None:  # the gold answer does not parse: match it as text
            matches = _text_matches(lines, answer, min_similarity)
    else:
        matches = _text_matches(lines, answer, min_similarity)
    if not matches:
        return None
    if len(matches) > 1:
        matches = _labelled(lines, matches, aliases) or matches
    box = _union([lines[i] for run in matches for i in run])
    if len(matches) > 1 and (page_height is None or box[3] - box[1] > MAX_SPREAD * page_height):
        return "ambiguous"
    return box


def _value_matches(lines: Sequence[OcrLine], answer: str, answer_type: str) -> list[tuple[int, ...]] | None:
    if answer_type == "date":
        gold = parse_date(answer)
        values = lambda text: [iso for iso, _, _ in find_date_spans(text)]  # noqa: E731
    else:
        gold = parse_amount(answer)
        values = money_amounts  # as the reader reads them: "RM60.30", "7, 768.43"
    if gold is None:
        return None
    return [(i,) for i, line in enumerate(lines) if gold in values(line.text)]


def _compact(text: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def _text_matches(lines: Sequence[OcrLine], answer: str, min_similarity: float) -> list[tuple[int, ...]]:
    """Runs of consecutive lines holding the answer: exact containment first (shortest runs
    that contain it, not nested in one another), else the single most similar run."""
    gold = _compact(answer)
    if not gold:
        return []
    texts = [_compact(line.text) for line in lines]
    runs = [tuple(range(i, j)) for i in range(len(lines)) for j in range(i + 1, min(i + MAX_LINES, len(lines)) + 1)]
    containing = [run for run in runs if gold in "".join(texts[k] for k in run)]
    minimal = [run for run in containing
               if not any(other != run and set(other) < set(run) for other in containing)]
    if minimal:
        return minimal
    best, best_run = 0.0, None
    for run in runs:
        joined = "".join(texts[k] for k in run)
        if not joined or abs(len(joined) - len(gold)) > (1 - min_similarity) * max(len(joined), len(gold)):
            continue  # the length gap alone rules it out (and Levenshtein is slow in Python)
        similarity = 1.0 - levenshtein(joined, gold) / max(len(joined), len(gold))
        if similarity > best:
            best, best_run = similarity, run
    return [best_run] if best_run is not None and best >= min_similarity else []


def _labelled(lines: Sequence[OcrLine], matches: list[tuple[int, ...]], aliases: Sequence[str]) -> list[tuple[int, ...]]:
    """Matches on the row of a line that carries one of the field's labels, or right under it
    (the reader's own layout rules)."""
    pattern = alias_pattern(aliases)
    if pattern is None:
        return []
    labels = [i for i, line in enumerate(lines) if pattern.search(line.text)]
    return [run for run in matches
            if any(same_row(lines[label], lines[run[0]]) or below(lines, label) == run[0] for label in labels)]


def _union(lines: Sequence[OcrLine]) -> tuple[float, float, float, float]:
    return (min(line.box[0] for line in lines), min(line.box[1] for line in lines),
            max(line.box[2] for line in lines), max(line.box[3] for line in lines))
