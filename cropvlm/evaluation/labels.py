"""Load and validate an evaluation folder: documents plus `labels.jsonl`.

One JSON object per line, the format of `data/sroie_dev/labels.jsonl`:

    {"doc": "sroie_001.jpg", "field": "date", "question": "What is the date of this receipt?",
     "answer": "19/10/2018", "source": "..."}

Optional keys: `page` (1-based page the answer is on), `box` ([x1, y1, x2, y2] in percent of
that page: the gold value box, used by the `oracle` policy) and `type` (answer type). The
synthetic generator (`cropvlm.synthetic.write_dataset`) writes `page` and `box`.

Each field gets one `FieldSpec`: its question is the labels' question, its type comes from
the templates by field name when given (with their aliases), else from a `type` key, else
it is inferred from the question's words (`infer_type`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cropvlm.box import Box
from cropvlm.errors import BoxError, CropVLMError
from cropvlm.templates import ANSWER_TYPES, FieldSpec, TemplateSet

LABELS_FILE = "labels.jsonl"
_REQUIRED = ("doc", "field", "question", "answer")


class LabelError(CropVLMError, ValueError):
    """A labels file or evaluation folder that cannot be evaluated (names file, line, problem)."""


@dataclass(frozen=True)
class Label:
    doc: str  # file name relative to the folder
    field: str
    question: str
    answer: str  # gold answer as printed
    page: int | None = None  # 1-based; None: the document's best page answers
    box: Box | None = None  # gold value box on `page` (percent)
    type: str | None = None  # answer type given by the labels file, if any


@dataclass(frozen=True)
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
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"{path}: cannot read: {exc}") from exc

    labels: list[Label] = []
    seen: set[tuple[str, str]] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        label = _parse_line(line, f"{path}:{number}")
        if (label.doc, label.field) in seen:
            raise LabelError(f"{path}:{number}: document {label.doc!r} has field {label.field!r} twice")
        seen.add((label.doc, label.field))
        labels.append(label)
    if not labels:
        raise LabelError(f"{path}: empty labels file")

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
            specs[label.field] = FieldSpec(label.field, label.question, template.type, template.aliases)
        else:
            specs[label.field] = FieldSpec(label.field, label.question, label.type or infer_type(label.question))
    return specs


def _parse_line(line: str, where: str) -> Label:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LabelError(f"{where}: not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise LabelError(f"{where}: expected a JSON object with {', '.join(_REQUIRED)}")
    for key in _REQUIRED:
        if not isinstance(data.get(key), str) or (key != "answer" and not data[key].strip()):
            raise LabelError(f"{where}: {key!r} must be a non-empty string, got {data.get(key)!r}")
    doc = data["doc"]
    if Path(doc).is_absolute() or ".." in Path(doc).parts:
        raise LabelError(f"{where}: 'doc' must be a file name inside the folder, got {doc!r}")
    page = data.get("page")
    if page is not None and (not isinstance(page, int) or isinstance(page, bool) or page < 1):
        raise LabelError(f"{where}: 'page' must be a positive integer (1-based), got {page!r}")
    box = data.get("box")
    if box is not None:
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise LabelError(f"{where}: 'box' must be [x1, y1, x2, y2] in percent, got {box!r}")
        try:
            box = Box(*(float(v) for v in box))
        except BoxError as exc:
            raise LabelError(f"{where}: bad 'box': {exc}") from exc
    answer_type = data.get("type")
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        raise LabelError(f"{where}: unknown field type {answer_type!r} for field {data['field']!r}; "
                         f"known: {', '.join(ANSWER_TYPES)}")
    return Label(doc, data["field"].strip(), data["question"].strip(), data["answer"], page, box, answer_type)
