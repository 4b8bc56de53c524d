"""Pick the answer to one field from OCR lines, by the field's type.

An OCR engine reads everything; the reader still has to choose *which* text answers the
question. Rules are generic (labels from the template's aliases, value formats by type,
layout), never tuned to a particular document. Each rule reports a strength: 1.0 for a
value found beside its label, less for a value found by its format alone, less again for
a layout guess.

Lines are column segments (see `ocr_lines`). A value belongs to a label when it follows
the alias in the label's segment, or is the nearest segment to its right on the same row,
or the segment right under it (next line, overlapping horizontally) - the three ways forms
print a value. Rules that need a whole visual row (a CASH row, a ROUNDING row) use rows
rebuilt from the segments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from cropvlm.normalize import find_amounts, find_date_spans, format_amount, normalize_value
from cropvlm.readers.answer_text import address_lines, company_lines, crop_text_lines, question_kind
from cropvlm.readers.layout import below, to_the_right
from cropvlm.readers.ocr_lines import OcrLine, merge_into_lines
from cropvlm.readers.spaces import split_glued_words
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
    used: tuple[OcrLine, ...] = field(default=(), compare=False)  # lines a text answer came from

    @property
    def confidence(self) -> float:
        return round(self.strength * self.ocr_confidence, 4) if self.text else 0.0


EMPTY = Candidate("", None, 0.0, 0.0)


def extract(lines: Sequence[OcrLine], spec: FieldSpec, region: str = "page",
            frame: tuple[float, float] | None = None) -> Candidate:
    """Best answer for `spec` in `lines`; `region` is "crop" or "page" (changes text rules);
    `frame` is the (width, height) of the image the lines were read from, if known."""
    if not lines:
        return EMPTY
    if spec.type in ("date", "amount", "id"):
        return {"date": _date, "amount": _amount, "id": _id}[spec.type](list(lines), spec, region)
    return _text(list(lines), spec, region, frame)


# --- aliases -----------------------------------------------------------------------------


def alias_alternatives(aliases: Sequence[str]) -> list[str]:
    """A regex per alias, longest first, tolerant to OCR spacing and punctuation between words."""
    parts = []
    for alias in sorted(aliases, key=len, reverse=True):
        words = re.findall(r"[A-Za-z0-9]+|[#%&$]", alias)
        if words:
            parts.append(r"[\s.:/()\-]*".join(re.escape(w) for w in words))
    return parts


def alias_pattern(aliases: Sequence[str]) -> re.Pattern[str] | None:
    """One regex for all aliases, as whole words."""
    parts = alias_alternatives(aliases)
    if not parts:
        return None
    return re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(parts) + r")(?![A-Za-z])", re.IGNORECASE)


def strip_aliases(text: str, aliases: Sequence[str]) -> str:
    pattern = alias_pattern(aliases)
    if pattern is not None:
        text = pattern.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip(" :;,.-#")


@dataclass(frozen=True)
class Labelled:
    """A place where the value of a labelled field may be printed."""

    label: int  # index of the segment holding the alias
    value: int  # index of the segment holding the candidate value text
    text: str  # the candidate value text (rest of the label's segment, or a whole segment)
    where: str  # "same" (after the alias), "right" (same row) or "below" (next line)
    prefixed: bool  # the alias follows other words in its segment ("Due Date" for DATE)


_WORD = re.compile(r"[A-Za-z]{2,}")


def labelled_values(lines: Sequence[OcrLine], pattern: re.Pattern[str] | None) -> list[tuple[int, list[Labelled]]]:
    """For every segment with an alias, its value places in order of preference: after the
    alias in the segment, segments to the right on the row (nearest first), the segment
    below. Labels (segment index, places) come in reading order."""
    out: list[tuple[int, list[Labelled]]] = []
    if pattern is None:
        return out
    for i, line in enumerate(lines):
        match = pattern.search(line.text)
        if match is None:
            continue
        prefixed = bool(_WORD.search(line.text[: match.start()]))
        places = []
        rest = line.text[match.end():].strip(" :;#.-")
        if rest:
            places.append(Labelled(i, i, rest, "same", prefixed))
        places += [Labelled(i, j, lines[j].text, "right", prefixed) for j in to_the_right(lines, i)]
        under = below(lines, i)
        if under is not None:
            places.append(Labelled(i, under, lines[under].text, "below", prefixed))
        out.append((i, places))
    return out


def _letters_outside(text: str, start: int, end: int) -> int:
    return sum(ch.isalpha() for ch in text[:start] + text[end:])


def _stops_search(place: Labelled) -> bool:
    """A segment of words to the right is another label or text: look no further right
    (the line below may still hold the value)."""
    return place.where == "right" and len(_WORD.findall(place.text)) > 0 and \
        sum(ch.isalpha() for ch in place.text) >= 4


def _rows(lines: Sequence[OcrLine]) -> list[OcrLine]:
    """Whole visual rows rebuilt from segments (for rules that read a row as a unit)."""
    return merge_into_lines(lines)


def _mean_conf(lines: Sequence[OcrLine]) -> float:
    return sum(line.confidence for line in lines) / len(lines) if lines else 0.0


# --- dates -------------------------------------------------------------------------------


def _date(lines: list[OcrLine], spec: FieldSpec, region: str) -> Candidate:
    pattern = alias_pattern(spec.aliases)
    found: list[tuple[tuple, Candidate]] = []
    for _, places in labelled_values(lines, pattern):
        blocked = False
        for place in places:
            if blocked and place.where == "right":
                continue
            spans = find_date_spans(place.text)
            if spans:
                iso, start, end = spans[0]
                if place.where == "same" or _date_alone(place.text, start, end):
                    text = place.text[start:end]
                    key = (place.prefixed, place.where == "below", len(found))
                    found.append((key, Candidate(text, iso, LABELLED, lines[place.value].confidence)))
                    break
            if _stops_search(place):
                blocked = True
    if found:
        return min(found, key=lambda pair: pair[0])[1]
    for line in lines:  # first date in reading order: receipts print it near the top
        spans = find_date_spans(line.text)
        if spans:
            iso, start, end = spans[0]
            return Candidate(line.text[start:end], iso, FORMATTED, line.confidence)
    return EMPTY


def _date_alone(text: str, start: int, end: int) -> bool:
    """A segment beside or under a label is its value if the date is what it prints (a
    weekday or a time may come with it), not a sentence that mentions one."""
    return len(_WORD.findall(text[:start])) <= 1


# --- amounts -----------------------------------------------------------------------------

# Rows that carry the word TOTAL but are not the amount paid.
_NOT_TOTAL = re.compile(r"SUB|QTY|QUANTITY|DISC|CHANGE|ITEM|SAVING|ROUND|EXCL|\bEX\b", re.IGNORECASE)
_TAX = re.compile(r"\b(TAX|GST|SST|VAT)\b", re.IGNORECASE)
_INCL = re.compile(r"INCL", re.IGNORECASE)
_ROUNDING = re.compile(r"ROUND", re.IGNORECASE)
_PAYMENT = re.compile(r"CASH|CHANGE|CARD|VISA|MASTER|TENDER|PAID|BALANCE", re.IGNORECASE)


# OCR puts a space after a thousands separator: "7, 768.43", "1. 234,50".
_SPLIT_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3})([.,]) (\d{3}[.,]\d{2})(?![\d.,])")


def money_amounts(text: str) -> list[Decimal]:
    """Amounts with a decimal part ("1,234.50", "60.30", "35.489,81"): prices print cents,
    counts and codes do not."""
    cleaned = re.sub(r"(?i)(RM|MYR|USD|EUR|SGD|GBP|[$€£¥])(?=[\d.,-])", r"\1 ", text)
    cleaned = _SPLIT_THOUSANDS.sub(r"\1\2\3", cleaned)
    return [v for v, start in find_amounts(cleaned) if re.fullmatch(r"-?[\d.,]*[.,]\d{2}", _token_at(cleaned, start))]


def _token_at(text: str, start: int) -> str:
    return re.match(r"\S*", text[start:]).group().rstrip(".,")


def _amount(lines: list[OcrLine], spec: FieldSpec, region: str) -> Candidate:
    pattern = alias_pattern(spec.aliases)
    best: tuple[Decimal, int] | None = None
    for label, places in labelled_values(lines, pattern):
        if _not_total(lines[label].text):
            continue
        blocked = False
        for place in places:
            if blocked and place.where == "right":
                continue
            if place.where != "same" and _not_total(place.text):
                break
            values = [v for v in money_amounts(place.text) if v > 0]
            if values and (place.where == "same" or _amount_alone(place.text)):
                if best is None or values[-1] >= best[0]:
                    best = (values[-1], place.value)  # the largest total; the last one on ties
                break
            if _stops_search(place):
                blocked = True
    if best is not None:
        value, line = _after_rounding(lines, *best)
        return Candidate(format_amount(value), format_amount(value), LABELLED, line.confidence)
    rows = _rows(lines)
    unlabelled = [(v, row) for row in rows if not _PAYMENT.search(row.text) for v in money_amounts(row.text) if v > 0]
    if not unlabelled:
        return EMPTY
    value, line = max(unlabelled, key=lambda pair: pair[0])
    strength = FORMATTED if region == "crop" and len({v for v, _ in unlabelled}) == 1 else GUESS
    return Candidate(format_amount(value), format_amount(value), strength, line.confidence)


# Money handed over (CASH 400.00, CHANGE 0.50, Paid by VISA), as opposed to what is owed
# (TOTAL PAID, BALANCE DUE: the total itself).
_TENDERED = re.compile(r"CASH|CHANGE|CARD|VISA|MASTER|TENDER|PAID", re.IGNORECASE)
_OWED = re.compile(r"TOTAL|DUE", re.IGNORECASE)


def payment_amounts(lines: Sequence[OcrLine]) -> set[str]:
    """Amounts printed on rows of money tendered or given back, not owed."""
    return {format_amount(v) for row in _rows(lines) if _TENDERED.search(row.text) and not _OWED.search(row.text)
            for v in money_amounts(row.text)}


def _amount_alone(text: str) -> bool:
    """A segment beside or under a label holds its amount: a number, maybe a currency code."""
    return sum(ch.isalpha() for ch in text) <= 4


def _not_total(text: str) -> bool:
    return bool(_NOT_TOTAL.search(text) or (_TAX.search(text) and not _INCL.search(text)))


def _after_rounding(lines: list[OcrLine], value: Decimal, index: int) -> tuple[Decimal, OcrLine]:
    """A "ROUNDING" row right after the total means the amount paid is the rounded one,
    printed on the next row with an amount (often unlabelled). Works on whole rows."""
    rows = _rows(lines)
    segment = lines[index]
    here = [r for r, row in enumerate(rows) if row.box[1] <= segment.center_y <= row.box[3]]
    if not here:
        return value, segment
    start = here[0]
    for j in range(start + 1, min(start + 3, len(rows))):
        if not _ROUNDING.search(rows[j].text):
            continue
        for k in range(j + 1, min(j + 3, len(rows))):
            if _PAYMENT.search(rows[k].text):
                break
            rounded = [v for v in money_amounts(rows[k].text) if v > 0]
            if rounded and abs(rounded[-1] - value) <= Decimal("0.10"):
                return rounded[-1], rows[k]
        break
    return value, segment


# --- ids ---------------------------------------------------------------------------------

_ID_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/_.]*[A-Za-z0-9]|[A-Za-z0-9]")
_ID_FILLER = {"NO", "NUMBER", "NUM", "NR", "NO.", "#"}


def id_tokens(text: str) -> list[str]:
    """Code-like tokens of `text` ("INV-2041", "2016/69631"), in order."""
    return _ID_TOKEN.findall(text)


def _id(lines: list[OcrLine], spec: FieldSpec, region: str) -> Candidate:
    pattern = alias_pattern(spec.aliases)
    found: list[tuple[tuple, Candidate]] = []
    for _, places in labelled_values(lines, pattern):
        blocked = False
        for place in places:
            if blocked and place.where == "right":
                continue
            tokens = [t for t in id_tokens(place.text) if t.upper() not in _ID_FILLER]
            if tokens and any(ch.isdigit() for ch in tokens[0]) and not _is_date(tokens[0]) and \
                    (place.where == "same" or _id_alone(tokens)):
                key = (place.prefixed, place.where == "below", len(found))
                found.append((key, Candidate(tokens[0], normalize_value(tokens[0], "id"), LABELLED,
                                             lines[place.value].confidence)))
                break
            if _stops_search(place):
                blocked = True
    if found:
        return min(found, key=lambda pair: pair[0])[1]
    if region != "crop":
        return EMPTY  # a page has many codes; without a label any pick is a coin toss
    tokens = [(t, line) for line in lines for t in id_tokens(line.text) if _id_like(t) and not _is_date(t)]
    if not tokens:
        return EMPTY
    token, line = tokens[0]
    strength = FORMATTED if len(tokens) == 1 else GUESS
    return Candidate(token, normalize_value(token, "id"), strength, line.confidence)


def _is_date(token: str) -> bool:
    """A printed date is a date, not an invoice number."""
    spans = find_date_spans(token)
    return bool(spans) and spans[0][1] == 0 and spans[0][2] >= len(token) - 1


def _id_alone(tokens: list[str]) -> bool:
    """A segment beside or under a label is its id if it starts with an id-like code and
    is not a phrase ("54 Market St." under an INVOICE title is an address)."""
    return _id_like(tokens[0]) and sum(ch.isalpha() for t in tokens[1:] for ch in t) <= 3


def _id_like(token: str) -> bool:
    digits = sum(ch.isdigit() for ch in token)
    return digits >= 3 or (digits >= 1 and any(ch.isalpha() for ch in token) and len(token) >= 4)


# --- free text ---------------------------------------------------------------------------


def _text(lines: list[OcrLine], spec: FieldSpec, region: str,
          frame: tuple[float, float] | None = None) -> Candidate:
    pattern = alias_pattern(spec.aliases)
    kind = question_kind(spec.question)
    for _, places in labelled_values(lines, pattern):
        for place in places:
            text = strip_aliases(place.text, spec.aliases)
            if text:
                return _text_candidate(text, [lines[place.value]], spec, LABELLED, kind)
    if region == "crop":
        # The crop is the policy's pick of where the answer is; when it holds several
        # unrelated lines, the one(s) that fit the question.
        # Nothing that fits (no name-like line for a name): all of it, as a weak guess.
        chosen = crop_text_lines(lines, kind, frame)
        strength = 0.8 if chosen else GUESS
        chosen = chosen or lines
        return _text_candidate(" ".join(line.text for line in chosen), chosen, spec, strength, kind)
    chosen = company_lines(lines) if kind == "name" else address_lines(lines) if kind == "address" else []
    if not chosen:
        return EMPTY
    return _text_candidate(" ".join(line.text for line in chosen), chosen, spec, GUESS + 0.15, kind)


def _text_candidate(text: str, used: Sequence[OcrLine], spec: FieldSpec, strength: float, kind: str) -> Candidate:
    text = split_glued_words(strip_aliases(text, spec.aliases), address=kind == "address")
    if not text:
        return EMPTY
    return Candidate(text, normalize_value(text, spec.type), strength, _mean_conf(used), tuple(used))
