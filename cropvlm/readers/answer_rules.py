"""Pick the answer to one field from OCR lines, by the field's type.

An OCR engine reads everything; the reader still has to choose *which* text answers the
question. Rules are generic (labels from the template's aliases, value formats by type),
never tuned to a particular document. Each rule reports a strength: 1.0 for a value found
beside its label, less for a value found by its format alone, less again for a layout guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from cropvlm.normalize import find_amounts, find_dates, format_amount, normalize_value
from cropvlm.readers.answer_text import company_lines, address_lines, question_kind
from cropvlm.readers.ocr_lines import OcrLine
from cropvlm.templates import FieldSpec

LABELLED = 1.0  # value next to one of the field's aliases
FORMATTED = 0.7  # value of the right format, no label (a tight crop often shows none)
GUESS = 0.45  # layout heuristic or one of several unlabelled values
STRONG = 0.65  # a crop answer at or above this strength is not second-guessed by the page


@dataclass(frozen=True)
class Candidate:
    text: str
    value: str | None
    strength: float  # rule strength, 0-1
    ocr_confidence: float  # mean OCR confidence of the lines used, 0-1

    @property
    def confidence(self) -> float:
        return round(self.strength * self.ocr_confidence, 4) if self.text else 0.0


EMPTY = Candidate("", None, 0.0, 0.0)


def extract(lines: Sequence[OcrLine], spec: FieldSpec, region: str = "page") -> Candidate:
    """Best answer for `spec` in `lines`; `region` is "crop" or "page" (changes text rules)."""
    if not lines:
        return EMPTY
    rule = {"date": _date, "amount": _amount, "id": _id}.get(spec.type, _text)
    return rule(list(lines), spec, region)


# --- aliases -----------------------------------------------------------------------------


def alias_pattern(aliases: Sequence[str]) -> re.Pattern[str] | None:
    """One regex for all aliases, longest first, tolerant to OCR spacing and punctuation."""
    parts = []
    for alias in sorted(aliases, key=len, reverse=True):
        words = re.findall(r"[A-Za-z0-9]+|[#%&$]", alias)
        if words:
            parts.append(r"[\s.:/()\-]*".join(re.escape(w) for w in words))
    if not parts:
        return None
    return re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(parts) + r")(?![A-Za-z])", re.IGNORECASE)


def strip_aliases(text: str, aliases: Sequence[str]) -> str:
    pattern = alias_pattern(aliases)
    if pattern is not None:
        text = pattern.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip(" :;,.-#")


def _labelled_rest(lines: list[OcrLine], pattern: re.Pattern[str] | None) -> list[tuple[int, int, str]]:
    """(label line, value line, text after the alias) for every labelled line; the next
    line stands in when the label ends its line (value printed below its label)."""
    out = []
    if pattern is None:
        return out
    for i, line in enumerate(lines):
        match = pattern.search(line.text)
        if match is None:
            continue
        rest = line.text[match.end():].strip(" :;#.-")
        if rest:
            out.append((i, i, rest))
        elif i + 1 < len(lines):
            out.append((i, i + 1, lines[i + 1].text))
    return out


def _mean_conf(lines: Sequence[OcrLine]) -> float:
    return sum(line.confidence for line in lines) / len(lines) if lines else 0.0


# --- dates -------------------------------------------------------------------------------


def _date(lines: list[OcrLine], spec: FieldSpec, region: str) -> Candidate:
    pattern = alias_pattern(spec.aliases)
    for _, i, rest in _labelled_rest(lines, pattern):
        dates = find_dates(rest)
        if dates:
            return Candidate(_date_text(rest, dates[0][1]), dates[0][0], LABELLED, lines[i].confidence)
    for line in lines:  # first date in reading order: receipts print it near the top
        dates = find_dates(line.text)
        if dates:
            return Candidate(_date_text(line.text, dates[0][1]), dates[0][0], FORMATTED, line.confidence)
    return EMPTY


def _date_text(text: str, start: int) -> str:
    # The printed date itself, without the time that often follows it.
    return re.split(r"\s|(?<=\d{4})(?=\d{1,2}:)", text[start:].strip(), maxsplit=1)[0]


# --- amounts -----------------------------------------------------------------------------

# Rows that carry the word TOTAL but are not the amount paid.
_NOT_TOTAL = re.compile(r"SUB|QTY|QUANTITY|DISC|CHANGE|ITEM|SAVING|ROUND|EXCL|\bEX\b", re.IGNORECASE)
_TAX = re.compile(r"\b(TAX|GST|SST|VAT)\b", re.IGNORECASE)
_INCL = re.compile(r"INCL", re.IGNORECASE)
_ROUNDING = re.compile(r"ROUND", re.IGNORECASE)
_PAYMENT = re.compile(r"CASH|CHANGE|CARD|VISA|MASTER|TENDER|PAID|BALANCE", re.IGNORECASE)


def _money(text: str) -> list[Decimal]:
    """Amounts with a decimal part: prices print cents, counts and codes do not."""
    cleaned = re.sub(r"(?i)(RM|MYR|USD|EUR|SGD|GBP|[$€£¥])(?=[\d.,-])", r"\1 ", text)
    return [v for v, start in find_amounts(cleaned) if re.match(r"-?\d*[.,]\d{2}(?!\d)", _token_at(cleaned, start))]


def _token_at(text: str, start: int) -> str:
    return re.match(r"\S*", text[start:]).group().rstrip(".,")


def _amount(lines: list[OcrLine], spec: FieldSpec, region: str) -> Candidate:
    pattern = alias_pattern(spec.aliases)
    best: tuple[Decimal, int] | None = None
    for label, i, rest in _labelled_rest(lines, pattern):
        if _not_total(lines[label].text) or (i != label and _not_total(rest)):
            continue
        values = [v for v in _money(rest) if v > 0]
        if values and (best is None or values[-1] >= best[0]):
            best = (values[-1], i)  # the largest total row; the last one on ties
    if best is not None:
        value, i = _after_rounding(lines, *best)
        return Candidate(format_amount(value), format_amount(value), LABELLED, lines[i].confidence)
    unlabelled = [(v, line) for line in lines if not _PAYMENT.search(line.text) for v in _money(line.text) if v > 0]
    if not unlabelled:
        return EMPTY
    value, line = max(unlabelled, key=lambda pair: pair[0])
    strength = FORMATTED if region == "crop" and len({v for v, _ in unlabelled}) == 1 else GUESS
    return Candidate(format_amount(value), format_amount(value), strength, line.confidence)


def _not_total(text: str) -> bool:
    return bool(_NOT_TOTAL.search(text) or (_TAX.search(text) and not _INCL.search(text)))


def _after_rounding(lines: list[OcrLine], value: Decimal, index: int) -> tuple[Decimal, int]:
    """A "ROUNDING" row right after the total means the amount paid is the rounded one,
    printed on the next row with an amount (often unlabelled)."""
    for j in range(index + 1, min(index + 3, len(lines))):
        if not _ROUNDING.search(lines[j].text):
            continue
        for k in range(j + 1, min(j + 3, len(lines))):
            if _PAYMENT.search(lines[k].text):
                break
            rounded = [v for v in _money(lines[k].text) if v > 0]
            if rounded and abs(rounded[-1] - value) <= Decimal("0.10"):
                return rounded[-1], k
        break
    return value, index


# --- ids ---------------------------------------------------------------------------------

_ID_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/_.]*[A-Za-z0-9]|[A-Za-z0-9]")
_ID_FILLER = {"NO", "NUMBER", "NUM", "NR", "NO.", "#"}


def _id(lines: list[OcrLine], spec: FieldSpec, region: str) -> Candidate:
    pattern = alias_pattern(spec.aliases)
    for _, i, rest in _labelled_rest(lines, pattern):
        tokens = [t for t in _ID_TOKEN.findall(rest) if t.upper() not in _ID_FILLER]
        if tokens and any(ch.isdigit() for ch in tokens[0]):
            return Candidate(tokens[0], normalize_value(tokens[0], "id"), LABELLED, lines[i].confidence)
    if region != "crop":
        return EMPTY  # a page has many codes; without a label any pick is a coin toss
    tokens = [(t, line) for line in lines for t in _ID_TOKEN.findall(line.text) if _id_like(t)]
    if not tokens:
        return EMPTY
    token, line = tokens[0]
    strength = FORMATTED if len(tokens) == 1 else GUESS
    return Candidate(token, normalize_value(token, "id"), strength, line.confidence)


def _id_like(token: str) -> bool:
    digits = sum(ch.isdigit() for ch in token)
    return digits >= 3 or (digits >= 1 and any(ch.isalpha() for ch in token) and len(token) >= 4)


# --- free text ---------------------------------------------------------------------------


def _text(lines: list[OcrLine], spec: FieldSpec, region: str) -> Candidate:
    pattern = alias_pattern(spec.aliases)
    for _, i, rest in _labelled_rest(lines, pattern):
        if rest.strip():
            return _text_candidate(rest, [lines[i]], spec, LABELLED)
    if region == "crop":
        # The crop is the policy's pick of where the answer is: all of it is the answer.
        return _text_candidate(" ".join(line.text for line in lines), lines, spec, 0.8)
    kind = question_kind(spec.question)
    chosen = company_lines(lines) if kind == "name" else address_lines(lines) if kind == "address" else []
    if not chosen:
        return EMPTY
    return _text_candidate(" ".join(line.text for line in chosen), chosen, spec, GUESS + 0.15)


def _text_candidate(text: str, used: Sequence[OcrLine], spec: FieldSpec, strength: float) -> Candidate:
    text = strip_aliases(text, spec.aliases)
    if not text:
        return EMPTY
    return Candidate(text, normalize_value(text, spec.type), strength, _mean_conf(used))
