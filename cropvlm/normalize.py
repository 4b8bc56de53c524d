"""Normalise answers by type and compare them: shared by the readers and the metrics.

A reader and the evaluation must agree on what "the same answer" means, so both go
through `normalize_value`: dates become ISO `YYYY-MM-DD`, amounts a plain decimal with two
places, ids upper case without spaces, free text upper case without punctuation.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

ANLS_THRESHOLD = 0.5

# --- text ------------------------------------------------------------------------------

_APOSTROPHES = re.compile(r"['\u2019`]")
_PUNCT = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")


def normalize_text(s: str | None) -> str:
    """Upper case, punctuation to spaces, whitespace collapsed.

    Punctuation becomes a space (not nothing) so "NO.53" and "NO. 53" agree; apostrophes
    vanish so "MCDONALD'S" and an OCR "MCDONALDS" agree.
    """
    s = _APOSTROPHES.sub("", (s or "").upper())
    return _SPACES.sub(" ", _PUNCT.sub(" ", s)).strip()


# --- dates -----------------------------------------------------------------------------

_MONTHS = {
    "JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6,
    "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12,
    # Malay abbreviations that differ (Malaysian receipts in SROIE): Mei, Ogos, Dis, Okt.
    "MEI": 5, "OGO": 8, "OKT": 10, "DIS": 12,
}
_MON = r"(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|MEI|OGO|OKT|DIS)[A-Z]*\.?"
_SEP = r"[/\-.]"
# Order matters: earlier patterns win where they overlap (year-first before day-first).
_DATE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("ymd", re.compile(r"(?<!\d)(\d{4})\s?" + _SEP + r"\s?(\d{1,2})\s?" + _SEP + r"\s?(\d{1,2})(?!\d)")),
    ("dmy", re.compile(r"(?<!\d)(\d{1,2})\s?" + _SEP + r"\s?(\d{1,2})\s?" + _SEP + r"\s?(\d{4}|\d{2})(?!\d)")),
    ("d_mon_y", re.compile(r"(?<!\d)(\d{1,2})(?:ST|ND|RD|TH)?[\s\-/.,]*" + _MON + r"[\s\-/.,]*(\d{4}|\d{2})(?!\d)")),
    ("mon_d_y", re.compile(r"(?<![A-Z])" + _MON + r"\s*(\d{1,2})(?:ST|ND|RD|TH)?,?\s*(\d{4}|\d{2})(?!\d)")),
    # Compact 20181019: only year-first with a plausible year, never ddmmyyyy (ambiguous).
    ("ymd8", re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(\d{2})(?!\d)")),
]


# A date with the time glued on by OCR: "19/10/201820:49", "20/02/1711:44", "2020-12-041:49PM",
# "9MAY202010:30". The split goes right after the year (or the day, year-first).
_GLUED_TIME = re.compile(
    r"(?:[/\-.]\d{4}"  # ...dd/mm/yyyy
    r"|(?<!\d)\d{4}[/\-.]\d{1,2}[/\-.]\d{2}"  # yyyy-mm-dd
    r"|(?<!\d)\d{1,2}[/\-.]\d{1,2}[/\-.]\d{2}"  # dd/mm/yy
    r"|(?<=[A-Z])\d{4}|(?<=[A-Z]\s)\d{4})"  # ...MAY 2020
    r"(?=\d{1,2}:\d{2})"
)


def _year(text: str) -> int:
    year = int(text)
    return 2000 + year if len(text) == 2 else year  # 2-digit years are this century


def _make_date(year: int, month: int, day: int) -> _dt.date | None:
    if not 1900 <= year <= 2099:
        return None
    try:
        return _dt.date(year, month, day)
    except ValueError:
        return None


def _date_from_match(kind: str, groups: tuple[str, ...]) -> _dt.date | None:
    if kind in ("ymd", "ymd8"):
        return _make_date(int(groups[0]), int(groups[1]), int(groups[2]))
    if kind == "dmy":
        first, second, year = int(groups[0]), int(groups[1]), _year(groups[2])
        # Day first by default (receipts here are Malaysian/European); month first only
        # when the second number cannot be a month but the first can.
        if second > 12 and first <= 12:
            return _make_date(year, first, second)
        return _make_date(year, second, first)
    if kind == "d_mon_y":
        return _make_date(_year(groups[2]), _MONTHS[groups[1][:3]], int(groups[0]))
    if kind == "mon_d_y":
        return _make_date(_year(groups[2]), _MONTHS[groups[0][:3]], int(groups[1]))
    return None


def find_dates(text: str) -> list[tuple[str, int]]:
    """All dates printed in `text` as (ISO string, start offset), in reading order."""
    return [(iso, start) for iso, start, _ in find_date_spans(text)]


def find_date_spans(text: str) -> list[tuple[str, int, int]]:
    """All dates in `text` as (ISO string, start, end): `text[start:end]` is the printed
    date ("August 14, 2019", "19/10/2018"), in reading order."""
    upper = (text or "").upper()
    # OCR glues a time to the year ("19/10/201820:49:59"): split before the time. Offsets
    # are mapped back to `text`, which has no such space.
    inserted = [m.end() for m in _GLUED_TIME.finditer(upper)]
    upper = _GLUED_TIME.sub(r"\g<0> ", upper)

    def back(offset: int) -> int:
        # The k-th inserted space sits at inserted[k] + k in `upper`.
        return offset - sum(1 for k, pos in enumerate(inserted) if pos + k < offset)

    found: list[tuple[int, int, str]] = []
    for kind, pattern in _DATE_PATTERNS:
        for match in pattern.finditer(upper):
            if any(s <= match.start() < e or match.start() <= s < match.end() for s, e, _ in found):
                continue  # already covered by an earlier, more specific pattern
            date = _date_from_match(kind, match.groups())
            if date is not None:
                found.append((match.start(), match.end(), date.isoformat()))
    return [(iso, back(start), back(end)) for start, end, iso in sorted(found)]


def parse_date(text: str) -> str | None:
    """First date in `text` as ISO `YYYY-MM-DD`, or None."""
    dates = find_dates(text)
    return dates[0][0] if dates else None


# --- amounts ---------------------------------------------------------------------------

# A number with optional thousands separators and decimals, optionally signed.
# Greedy, so a number is never cut short; trailing separators are dropped afterwards. A
# number glued to a preceding letter ("INV2041") is part of a word, not an amount.
_NUMBER = re.compile(r"(?<!\w)-?\d[\d.,]*|(?<![\w.,])-?[.,]\d{1,2}(?!\d)")


def _to_decimal(token: str) -> Decimal | None:
    negative = token.startswith("-")
    digits = token.lstrip("-")
    last_dot, last_comma = digits.rfind("."), digits.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        # Both present: the right-most is the decimal mark ("1,234.50" / "1.234,50").
        decimal_mark = "." if last_dot > last_comma else ","
        thousands = "," if decimal_mark == "." else "."
        digits = digits.replace(thousands, "").replace(decimal_mark, ".")
    elif last_comma >= 0:
        # Comma only: "1,234" / "1,234,567" are thousands, "12,50" / "12,5" are decimals.
        parts = digits.split(",")
        if len(parts) == 2 and len(parts[1]) in (1, 2):
            digits = parts[0] + "." + parts[1]
        elif all(len(p) == 3 for p in parts[1:]):
            digits = "".join(parts)
        else:
            return None
    elif digits.count(".") > 1:
        # "1.234.567" thousands with dots; "1.234.50" (OCR noise) keep the last as decimal.
        parts = digits.split(".")
        if all(len(p) == 3 for p in parts[1:]):
            digits = "".join(parts)
        else:
            digits = "".join(parts[:-1]) + "." + parts[-1]
    try:
        value = Decimal(digits or "x")
    except InvalidOperation:
        return None
    return -value if negative else value


def find_amounts(text: str) -> list[tuple[Decimal, int]]:
    """All amounts in `text` as (value, start offset). Currency signs and codes are ignored."""
    out: list[tuple[Decimal, int]] = []
    for match in _NUMBER.finditer(text or ""):
        value = _to_decimal(match.group().rstrip(".,"))
        if value is not None:
            out.append((value, match.start()))
    return out


def parse_amount(text: str) -> Decimal | None:
    """The last amount in `text` (values follow their labels: "TOTAL RM 60.30")."""
    # Currency glued to the number ("RM60.30", "$8.20") must not hide it from the regex.
    cleaned = re.sub(r"(?i)(RM|MYR|USD|EUR|SGD|GBP|[$€£¥])(?=[\d.,-])", r"\1 ", text or "")
    amounts = find_amounts(cleaned)
    return amounts[-1][0] if amounts else None


def format_amount(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# --- by type -----------------------------------------------------------------------------

_ID_EDGE = re.compile(r"^[\s.,:;#\-]+|[\s.,:;\-]+$")


def normalize_value(text: str | None, answer_type: str) -> str | None:
    """Canonical form of an answer of `answer_type`; None when a date/amount is unparsable."""
    text = text or ""
    if answer_type == "date":
        return parse_date(text)
    if answer_type == "amount":
        value = parse_amount(text)
        return None if value is None else format_amount(value)
    if answer_type == "id":
        cleaned = _ID_EDGE.sub("", text.upper())
        return _SPACES.sub("", cleaned) or None
    return normalize_text(text)


# --- metrics -----------------------------------------------------------------------------


def exact_match(pred: str | None, gold: str | None, answer_type: str = "text") -> bool:
    """Equal after normalisation by type; an unparsable gold date/amount compares as text."""
    gold_value = normalize_value(gold, answer_type)
    if gold_value is None:
        return normalize_text(pred) == normalize_text(gold) and bool(normalize_text(gold))
    pred_value = normalize_value(pred, answer_type)
    if pred_value is None:
        return False
    if answer_type == "amount":
        return Decimal(pred_value) == Decimal(gold_value)
    return pred_value == gold_value


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def anls(pred: str | None, gold: str | Iterable[str] | None, threshold: float = ANLS_THRESHOLD) -> float:
    """Average Normalised Levenshtein Similarity of one prediction (best over golds).

    Standard DocVQA definition on normalised text: 1 - distance / max length, and 0 when
    that normalised distance reaches `threshold`.
    """
    golds = [gold] if gold is None or isinstance(gold, str) else list(gold)
    p = normalize_text(pred)
    best = 0.0
    for g in golds:
        g = normalize_text(g)
        if not p and not g:
            return 1.0
        distance = levenshtein(p, g) / max(len(p), len(g))
        best = max(best, 0.0 if distance >= threshold else 1.0 - distance)
    return best
