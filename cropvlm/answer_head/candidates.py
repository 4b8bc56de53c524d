"""Every answer a page's OCR lines could give to one field, before any is chosen.

The rules in `readers.answer_rules` pick one answer; here we list all plausible ones so a
model can choose: for dates, amounts and ids every value of the type printed anywhere (an
id glued to its label also without the label); for free text, runs of up to `MAX_SPAN`
lines that follow each other in reading order or down a column, plus whatever the rules
picked (they may join segments of one row). Each candidate keeps the lines it came from,
so features can look at its place on the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cropvlm.normalize import find_date_spans, format_amount, normalize_value
from cropvlm.readers.answer_rules import alias_alternatives, id_tokens, money_amounts, strip_aliases
from cropvlm.readers.answer_text import question_kind
from cropvlm.readers.layout import below
from cropvlm.readers.ocr_lines import OcrLine
from cropvlm.readers.spaces import split_glued_words
from cropvlm.templates import FieldSpec

MAX_SPAN = {"name": 3, "address": 6, "other": 3}  # lines in a free-text candidate, by question kind


@dataclass(frozen=True)
class AnswerCandidate:
    text: str  # as it would be answered
    value: str  # normalised by the field's type (never None: unparsable text is no candidate)
    lines: tuple[int, ...]  # indices into the page's lines, first = where the value starts
    start: int = 0  # for typed values: character offset of the value in lines[0].text


def text_candidates(lines: Sequence[OcrLine], spec: FieldSpec,
                    down: Sequence[int | None] | None = None) -> list[AnswerCandidate]:
    """Runs of lines in reading order and down columns, aliases stripped, glued words split;
    `down[i]` is the line right under line i (computed here when not given)."""
    if down is None:
        down = [below(lines, i, max_gap=2.0) for i in range(len(lines))]
    kind = question_kind(spec.question)
    longest = MAX_SPAN[kind]
    runs: set[tuple[int, ...]] = set()
    for i in range(len(lines)):
        for n in range(1, longest + 1):
            if i + n <= len(lines):
                runs.add(tuple(range(i, i + n)))
        column, current = [i], i
        while len(column) < longest:
            current = down[current]
            if current is None or current in column:
                break
            column.append(current)
            runs.add(tuple(column))
    out: dict[str, AnswerCandidate] = {}
    for run in sorted(runs):
        text = join_text((lines[j].text for j in run), spec, kind)
        value = normalize_value(text, "text")
        if value and value not in out:
            out[value] = AnswerCandidate(text, value, run)
    return list(out.values())


def join_text(parts, spec: FieldSpec, kind: str) -> str:
    return split_glued_words(strip_aliases(" ".join(p.strip() for p in parts), spec.aliases),
                             address=kind == "address")


def typed_candidates(lines: Sequence[OcrLine], spec: FieldSpec) -> list[AnswerCandidate]:
    """Every date / amount / id printed in `lines`, one candidate per occurrence."""
    out = []
    glued = glued_label(spec.aliases) if spec.type == "id" else None
    for i, line in enumerate(lines):
        if spec.type == "date":
            for iso, start, end in find_date_spans(line.text):
                out.append(AnswerCandidate(line.text[start:end], iso, (i,), start))
        elif spec.type == "amount":
            for value in money_amounts(line.text):
                if value > 0:
                    text = format_amount(value)
                    out.append(AnswerCandidate(text, text, (i,), _position(line.text, value)))
        elif spec.type == "id":
            offset = 0
            for token in id_tokens(line.text):
                start = line.text.find(token, offset)
                offset = start + len(token)
                for text, at in _id_parts(token, start, glued):
                    value = normalize_value(text, "id")
                    if value and any(ch.isdigit() for ch in text):
                        out.append(AnswerCandidate(text, value, (i,), at))
    return out


def _id_parts(token: str, start: int, glued: re.Pattern[str] | None) -> list[tuple[str, int]]:
    """The token, and what follows a label glued to its front (`INVOICENUMBERM54955`,
    `FACTUURnummer2018-2863`, `FATTURAN.1657/2015`): OCR drops the space after a label.
    The head sees the label in the text before the rest (its `alias_before` feature)."""
    parts = [(token, start)]
    match = glued.match(token) if glued is not None else None
    if match and 0 < match.end() < len(token):
        parts.append((token[match.end():], start + match.end()))
    return parts


def glued_label(aliases: Sequence[str]) -> re.Pattern[str] | None:
    """Labels at the start of a token, with no space or word boundary after them: the field's
    aliases or a number word, repeated (`INVOICE` + `NUMBER`), with their punctuation."""
    parts = alias_alternatives([*aliases, *_NUMBER_WORDS])
    if not parts:
        return None
    return re.compile(r"(?:(?:" + "|".join(parts) + r")[\s.:/()\-#°º]*)+", re.IGNORECASE)


_NUMBER_WORDS = ("NO", "NR", "NUMBER", "NUM", "NUMMER", "NUMERO", "N")


def _position(text: str, value) -> int:
    """Rough character offset of an amount in its line (its integer part's first digit)."""
    whole = str(abs(int(value)))
    at = text.find(whole)
    return max(at, 0)


def candidates(lines: Sequence[OcrLine], spec: FieldSpec,
               down: Sequence[int | None] | None = None) -> list[AnswerCandidate]:
    if spec.type == "text":
        return text_candidates(lines, spec, down)
    return typed_candidates(lines, spec)
