"""Gold labels: the one `Label` type and the one `labels.jsonl` parser, for evaluation,
training and the label store (`storage/labels.py`).

One JSON object per line, the format of `data/sroie_dev/labels.jsonl`:

    {"doc": "sroie_001.jpg", "field": "date", "question": "What is the date of this receipt?",
     "answer": "19/10/2018", "source": "..."}

Required: `doc` (a path relative to the folder), `field`, `answer`. Optional: `question`
(required where no template gives one), `page` (1-based page the answer is on), `box`
([x1, y1, x2, y2] in percent of that page: the gold value box, used by the `oracle` policy)
and `type` (answer type). Other keys are ignored. The synthetic generator
(`cropvlm.synthetic.write_dataset`) writes `page` and `box`.

`load_labels` reads an evaluation folder (documents plus labels.jsonl) and gives each field
one `FieldSpec`: its question is the labels' (else the template's), its type comes from the
templates by field name when given (with their aliases), else from a `type` key, else it is
inferred from the question's words (`infer_type`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cropvlm.box import Box
from cropvlm.errors import BoxError, LabelError
from cropvlm.templates import ANSWER_TYPES, FieldSpec, TemplateSet

LABELS_FILE = "labels.jsonl"


@dataclasses.dataclass(frozen=True)
class Label:
    doc: str  # path relative to the labels' folder or source (or a full uri)
    field: str
    answer: str  # gold answer as printed
    question: str | None = None  # None: the template's question
    page: int | None = None  # 1-based; None: whichever page holds the value
    box: Box | None = None  # gold value box on `page` (percent)
    type: str | None = None  # answer type given by the labels file, if any
    line: int = dataclasses.field(default=0, compare=False)  # where it was read, for messages

    @property
    def key(self) -> tuple[str, int | None, str]:
        return self.doc, self.page, self.field


def describe_key(key: tuple[Any, int | None, str]) -> str:
    doc, page, field = key
    return f"document {doc!r}{'' if page is None else f' page {page}'} field {field!r}"


# --- parsing ------------------------------------------------------------------------------


MAX_PAGE = 100_000  # a page number beyond any document we render (and within a database integer)


def parse_labels(text_or_lines: str | Iterable[str], *, origin: str, question_required: bool = False,
                 one_per_field: bool = False) -> list[Label]:
    """Labels from JSON lines; raises LabelError listing every problem as "origin:line: problem".

    The same document, page and field again: an identical line collapses into the first, a
    different one is an error. `one_per_field` (evaluation asks each field once per
    document): any second label of a document's field is an error, whatever its page.
    """
    lines = text_or_lines.splitlines() if isinstance(text_or_lines, str) else text_or_lines
    problems: list[str] = []
    labels: list[Label] = []
    first: dict[tuple, Label] = {}
    for number, line in enumerate(lines, 1):
        if number == 1:
            line = line.lstrip("\ufeff")  # a UTF-8 byte-order mark, as some editors save
        if not line.strip():
            continue
        where = f"{origin}:{number}"
        try:
            label = _parse_line(line, number, question_required)
        except LabelError as exc:
            problems.extend(f"{where}: {p}" for p in exc.problems)
            continue
        earlier = first.setdefault((label.doc, label.field) if one_per_field else label.key, label)
        if earlier is label:
            labels.append(label)
        elif one_per_field:
            problems.append(f"{where}: document {label.doc!r} has field {label.field!r} twice (line {earlier.line})")
        elif earlier != label:
            problems.append(
                f"{where}: {describe_key(label.key)} contradicts line {earlier.line} "
                f"(answer {label.answer!r} vs {earlier.answer!r}"
                f"{'' if label.answer != earlier.answer else ', other question, type or box'})"
            )
    if not labels and not problems:
        problems.append(f"{origin}: no labels (an empty labels file; expected one JSON object per line: "
                        "doc, field, answer)")
    if problems:
        raise LabelError(problems)
    return labels


def _parse_line(line: str, number: int, question_required: bool) -> Label:
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
    if isinstance(doc, str) and doc.strip() and not _is_relative(doc):
        problems.append(f"'doc' must be a file name inside the folder (a relative path with '/'), got {doc!r}")
    question = data.get("question")
    if (question is not None and not isinstance(question, str)) or (
            question_required and not (isinstance(question, str) and question.strip())):
        problems.append(f"'question' must be a non-empty string, got {question!r}")
    page = data.get("page")
    if page is not None and (not isinstance(page, int) or isinstance(page, bool) or not 1 <= page <= MAX_PAGE):
        problems.append(f"'page' must be an integer from 1 to {MAX_PAGE} (1-based), got {page!r}")
    for key, value in data.items():
        if isinstance(value, str) and "\x00" in value:  # PostgreSQL text cannot hold it
            problems.append(f"{key!r} contains a NUL character")
    answer_type = data.get("type")
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        problems.append(f"unknown field type {answer_type!r} for field {data.get('field')!r}; "
                        f"known: {', '.join(ANSWER_TYPES)}")
    box = data.get("box")
    if box is not None:
        try:
            box = _parse_box(box)
        except LabelError as exc:
            problems.extend(exc.problems)
    if problems:
        raise LabelError(problems)
    return Label(doc, data["field"].strip(), data["answer"], (question or "").strip() or None, page, box,
                 answer_type, number)


def _is_relative(doc: str) -> bool:
    """A path inside the folder: not absolute, '/' separators, no empty, '.' or '..' part."""
    return not doc.startswith("/") and "\\" not in doc and all(
        part not in ("", ".", "..") for part in doc.split("/"))


def _parse_box(value: Any) -> Box:
    if not (isinstance(value, list) and len(value) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise LabelError(f"'box' must be [x1, y1, x2, y2] in percent, got {value!r}")
    try:
        return Box(*(float(v) for v in value))
    except BoxError as exc:
        raise LabelError(f"bad 'box': {exc}") from exc


# --- evaluation folders -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LabelSet:
    folder: Path
    labels: tuple[Label, ...]
    documents: tuple[str, ...]  # in order of first appearance in labels.jsonl
    fields: dict[str, FieldSpec]  # field -> spec (question, type, aliases)

    @property
    def has_boxes(self) -> bool:
        return any(label.box is not None for label in self.labels)

    def labels_of(self, doc: str) -> list[Label]:
        return [label for label in self.labels if label.doc == doc]


# Words of a question that decide its answer type, tried in this order.
_TYPE_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("date", re.compile(r"\b(date|day|when|dated)\b", re.I)),
    ("amount", re.compile(r"\b(amount|total|price|cost|sum|paid|due|balance|tax|subtotal|how much)\b", re.I)),
    ("id", re.compile(r"\b(number|id|identifier|no|code|reference|ref)\b|#", re.I)),
)


def infer_type(question: str) -> str:
    """Answer type from the question's words: date, amount, id, else text."""
    for answer_type, pattern in _TYPE_WORDS:
        if pattern.search(question or ""):
            return answer_type
    return "text"


def load_labels(folder: str | Path, templates: TemplateSet | None = None, limit: int | None = None) -> LabelSet:
    """Read `folder/labels.jsonl`, keep the first `limit` documents, check every document
    file exists, and give each field its spec. Raises LabelError with file and line."""
    folder = Path(folder)
    path = folder / LABELS_FILE
    if not folder.is_dir():
        raise LabelError(f"{folder}: not a folder")
    if not path.is_file():
        raise LabelError(f"{path}: no labels file (expected one JSON object per line: doc, field, question, answer)")
    if limit is not None and limit < 1:
        raise LabelError(f"--limit must be >= 1, got {limit}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"{path}: cannot read: {exc}") from exc
    labels = parse_labels(text, origin=str(path), question_required=templates is None, one_per_field=True)

    documents = list(dict.fromkeys(label.doc for label in labels))
    if limit is not None:
        documents = documents[:limit]
        keep = set(documents)
        labels = [label for label in labels if label.doc in keep]
    missing = [doc for doc in documents if not (folder / doc).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise LabelError(f"{path}: document file {folder / missing[0]} does not exist{more}")
    fields = field_specs(labels, templates, str(path))
    return LabelSet(folder, tuple(labels), tuple(documents), fields)


def field_specs(labels: Sequence[Label], templates: TemplateSet | None = None, source: str = LABELS_FILE) -> dict[str, FieldSpec]:
    """One spec per labelled field (in order of first appearance)."""
    by_name = {spec.field: spec for spec in templates.fields} if templates is not None else {}
    specs: dict[str, FieldSpec] = {}
    for label in labels:
        if label.field in specs:
            continue
        if templates is not None:
            template = by_name.get(label.field)
            if template is None:
                raise LabelError(
                    f"{source}: field {label.field!r} has no answer type: it is not in the templates "
                    f"{templates.name} (fields: {', '.join(sorted(by_name))})"
                )
            specs[label.field] = FieldSpec(label.field, label.question or template.question, template.type,
                                           template.aliases)
        else:
            specs[label.field] = FieldSpec(label.field, label.question, label.type or infer_type(label.question))
    return specs
