"""Question templates: versioned YAML files naming the fields to extract.

    name: receipt
    version: 1
    fields:
      - field: total                           # column name in the results
        question: What is the total amount paid?
        type: amount                           # text | date | amount | id
        aliases: [TOTAL, GRAND TOTAL]          # labels printed beside the value
        review_below: 0.9                      # optional: answers less confident need review

Every error names the file, the field and the problem. The content hash of the template
set (all files, canonicalised) is part of every result's identity, so editing a question
produces new rows instead of silently mixing old and new answers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from cropvlm.errors import TemplateError

ANSWER_TYPES = ("text", "date", "amount", "id")
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_TOP_KEYS = {"name", "version", "description", "fields"}
_FIELD_KEYS = {"field", "question", "type", "aliases", "review_below"}


@dataclass(frozen=True)
class FieldSpec:
    """One question to ask of every page."""

    field: str  # identifier, lower snake case
    question: str  # asked verbatim (case kept, unlike the paper's public code)
    type: str = "text"  # one of ANSWER_TYPES: decides parsing and normalisation
    aliases: tuple[str, ...] = ()  # labels printed beside the value, stripped from answers
    # Answers with a lower confidence are flagged `needs_review` (None: the run's setting).
    # Not part of the content hash: it changes no answer, only which ones a person checks.
    review_below: float | None = None


@dataclass(frozen=True)
class Template:
    name: str
    version: int
    fields: tuple[FieldSpec, ...]
    source: str = ""  # file it came from, for error messages


@dataclass(frozen=True)
class TemplateSet:
    """The templates of one run; `fields` is their union in file order."""

    templates: tuple[Template, ...]
    content_hash: str  # sha256 of the canonical JSON of all templates
    fields: tuple[FieldSpec, ...] = field(default=())

    @property
    def name(self) -> str:
        return "+".join(f"{t.name}@v{t.version}" for t in self.templates)

    def canonical_json(self) -> str:
        return _canonical_json(self.templates)


def load_template_set(paths: Iterable[str | Path]) -> TemplateSet:
    """Load and validate template files; field names must be unique across the set."""
    templates = tuple(load_template(p) for p in paths)
    if not templates:
        raise TemplateError("no template files given")
    seen: dict[str, str] = {}
    for template in templates:
        for spec in template.fields:
            if spec.field in seen:
                raise TemplateError(
                    f"{template.source}: field '{spec.field}' is already defined in {seen[spec.field]}"
                )
            seen[spec.field] = template.source
    digest = hashlib.sha256(_canonical_json(templates).encode()).hexdigest()
    return TemplateSet(templates, digest, tuple(s for t in templates for s in t.fields))


def load_template(path: str | Path) -> Template:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read template file: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not valid YAML: {exc}") from exc
    return parse_template(data, source=str(path))


def parse_template(data: object, source: str = "<template>") -> Template:
    if not isinstance(data, dict):
        raise TemplateError(f"{source}: expected a mapping with 'name', 'version' and 'fields'")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise TemplateError(f"{source}: unknown keys {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise TemplateError(f"{source}: 'name' must be a non-empty string")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TemplateError(f"{source}: 'version' must be a positive integer, got {version!r}")
    raw_fields = data.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise TemplateError(f"{source}: 'fields' must be a non-empty list")
    fields = tuple(_parse_field(raw, source, i) for i, raw in enumerate(raw_fields))
    names = [f.field for f in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TemplateError(f"{source}: field '{duplicates[0]}' is defined more than once")
    return Template(name.strip(), version, fields, source)


def _parse_field(raw: object, source: str, index: int) -> FieldSpec:
    where = f"{source}: fields[{index}]"
    if not isinstance(raw, dict):
        raise TemplateError(f"{where}: expected a mapping with 'field' and 'question'")
    name = raw.get("field")
    if isinstance(name, str) and _FIELD_NAME.match(name):
        where = f"{source}: field '{name}'"
    else:
        raise TemplateError(f"{where}: 'field' must be lower snake case (a-z, 0-9, _), got {name!r}")
    unknown = set(raw) - _FIELD_KEYS
    if unknown:
        raise TemplateError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_FIELD_KEYS)}")
    question = raw.get("question")
    if not isinstance(question, str) or not question.strip():
        raise TemplateError(f"{where}: 'question' must be a non-empty string")
    answer_type = raw.get("type", "text")
    if answer_type not in ANSWER_TYPES:
        raise TemplateError(f"{where}: 'type' must be one of {list(ANSWER_TYPES)}, got {answer_type!r}")
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise TemplateError(f"{where}: 'aliases' must be a list of non-empty strings")
    review_below = raw.get("review_below")
    if review_below is not None and (isinstance(review_below, bool) or not isinstance(review_below, int | float)
                                     or not 0 <= review_below <= 1):
        raise TemplateError(f"{where}: 'review_below' must be a confidence between 0 and 1, got {review_below!r}")
    return FieldSpec(name, question.strip(), answer_type, tuple(a.strip() for a in aliases),
                     None if review_below is None else float(review_below))


def _canonical_json(templates: Sequence[Template]) -> str:
    payload = [
        {"name": t.name, "version": t.version,
         "fields": [{k: v for k, v in asdict(f).items() if k != "review_below"} for f in t.fields]}
        for t in templates
    ]
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
