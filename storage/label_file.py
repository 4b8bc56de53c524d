"""The labels file: parse and validate `labels.jsonl` (doc, field, answer; optional
question, page, box, type) into `LabelInput`s, reporting every problem with its line.

No database here: `storage/labels.py` imports what this returns.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from typing import Any

from storage.errors import LabelError, StorageError
from storage.objectstore import check_key

# The answer types of cropvlm.templates (storage does not import cropvlm; a test checks they agree).
ANSWER_TYPES = ("text", "date", "amount", "id")

BoxTuple = tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class LabelInput:
    """One label as read from a labels file (doc is a key relative to the source)."""

    doc: str
    field: str
    answer: str
    question: str | None = None
    page: int | None = None  # 1-based
    box: BoxTuple | None = None  # gold value box, percent of the page
    answer_type: str | None = None
    line: int = dataclasses.field(default=0, compare=False)  # where it was read, for messages

    @property
    def key(self) -> tuple[str, int | None, str]:
        return self.doc, self.page, self.field


# --- parsing ------------------------------------------------------------------------------


def parse_labels_jsonl(text_or_lines: str | Iterable[str], *, origin: str) -> list[LabelInput]:
    """Labels from JSON lines (doc, field, answer; optional question, page, box, type).

    Raises LabelError listing every problem as "origin:line: problem". Identical duplicate
    lines collapse into one; the same doc, page and field with different content is an error.
    """
    lines = text_or_lines.splitlines() if isinstance(text_or_lines, str) else text_or_lines
    problems: list[str] = []
    labels: list[LabelInput] = []
    first: dict[tuple[str, int | None, str], LabelInput] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{origin}:{number}"
        try:
            label = _parse_line(line, number)
        except LabelError as exc:
            problems.extend(f"{where}: {p}" for p in exc.problems)
            continue
        earlier = first.get(label.key)
        if earlier is None:
            first[label.key] = label
            labels.append(label)
        elif earlier != label:
            problems.append(
                f"{where}: {describe_key(label.key)} contradicts line {earlier.line} "
                f"(answer {label.answer!r} vs {earlier.answer!r}"
                f"{'' if label.answer != earlier.answer else ', other question, type or box'})"
            )
    if not labels and not problems:
        problems.append(f"{origin}: no labels (expected one JSON object per line: doc, field, answer)")
    if problems:
        raise LabelError(problems)
    return labels


def _parse_line(line: str, number: int) -> LabelInput:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LabelError(f"not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise LabelError("expected a JSON object with doc, field, answer")
    problems = []
    for key in ("doc", "field", "answer"):
        value = data.get(key)
        if value is None:
            problems.append(f"missing {key!r}")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"{key!r} must be a non-empty string, got {value!r}")
    doc = data.get("doc")
    if isinstance(doc, str) and doc.strip():
        try:
            check_key(doc)
        except StorageError as exc:
            problems.append(f"'doc' must be a path relative to the source: {exc}")
    question = data.get("question")
    if question is not None and not isinstance(question, str):
        problems.append(f"'question' must be a string, got {question!r}")
    page = data.get("page")
    if page is not None and (not isinstance(page, int) or isinstance(page, bool) or page < 1):
        problems.append(f"'page' must be a positive integer (1-based), got {page!r}")
    answer_type = data.get("type")
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        problems.append(f"'type' must be one of {', '.join(ANSWER_TYPES)}, got {answer_type!r}")
    box = data.get("box")
    box_problem = None if box is None else check_box(box)
    if box_problem:
        problems.append(box_problem)
    if problems:
        raise LabelError(problems)
    return LabelInput(
        doc=doc,
        field=data["field"].strip(),
        answer=data["answer"],
        question=question.strip() if question else None,
        page=page,
        box=None if box is None else tuple(float(v) for v in box),
        answer_type=answer_type,
        line=number,
    )


def check_box(box: Any) -> str | None:
    """Why `box` is not [x1, y1, x2, y2] in percent with x1 < x2, y1 < y2; None if it is."""
    if not (
        isinstance(box, (list, tuple))
        and len(box) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
    ):
        return f"'box' must be [x1, y1, x2, y2] in percent, got {box!r}"
    x1, y1, x2, y2 = box
    if not all(math.isfinite(v) and 0 <= v <= 100 for v in box) or not (x1 < x2 and y1 < y2):
        return f"'box' must lie in 0-100 percent with x1 < x2 and y1 < y2, got {list(box)!r}"
    return None


def describe_key(key: tuple[Any, int | None, str]) -> str:
    doc, page, field = key
    return f"document {doc!r}{'' if page is None else f' page {page}'} field {field!r}"
