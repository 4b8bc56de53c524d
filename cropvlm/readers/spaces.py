"""Put back the word spaces a CTC recogniser drops inside tightly set lines.

RapidOCR reads a zoomed bold line such as a shop name as one text region and often emits
no spaces in it (`SANYUDESIGNSTUDIOENTERPRISE`), while the small page view is read word by
word. Its character positions (CTC columns, `return_word_box=True`) still show the word
gaps: measured on synthetic text-field crops (`benchmarks/ocr_space_gaps.py`), 11 of 16
word boundaries sit at >= 1.45x the line's median character pitch and none of 151 gaps
inside words does (max 1.42).

Only in long pieces read with no space at all (a piece with spaces, or a short one, is one
the recogniser segmented itself: splitting those split words, `SAN YU`, `HARD WARE`, in a
first measurement on page reads), only between two letters, and only where both sides
are runs of >= 3 letters that do not touch a digit: ids such as `INVOICE1182161` stay whole
(at the price of `JALANPERMAS19`), and digits and punctuation are never touched.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence

GAP_RATIO = 1.45  # word gap / median character pitch
MIN_RUN = 3  # letters on each side of a restored space
MIN_LENGTH = 12  # characters of a glued piece


def restore_spaces(text: str, centres: Sequence[float], ratio: float = GAP_RATIO) -> str:
    """`text` with a space inserted at wide gaps between letter runs; `centres` are the x
    centres of its characters (one per character), left to right."""
    if len(centres) != len(text) or len(text) < MIN_LENGTH or " " in text:
        return text
    pitch = statistics.median(b - a for a, b in zip(centres, centres[1:]))
    if pitch <= 0:
        return text
    out = [text[0]]
    for i in range(1, len(text)):
        if (text[i - 1].isalpha() and text[i].isalpha() and centres[i] - centres[i - 1] >= ratio * pitch
                and _letters_before(text, i) >= MIN_RUN and _letters_from(text, i) >= MIN_RUN
                and not _touches_digit(text, i)):
            out.append(" ")
        out.append(text[i])
    return "".join(out)


def _letters_before(text: str, i: int) -> int:
    n = 0
    while i - n - 1 >= 0 and text[i - n - 1].isalpha():
        n += 1
    return n


def _letters_from(text: str, i: int) -> int:
    n = 0
    while i + n < len(text) and text[i + n].isalpha():
        n += 1
    return n


def _touches_digit(text: str, i: int) -> bool:
    """Whether the letter runs on either side of position i border a digit (an id's letters)."""
    start, end = i - _letters_before(text, i), i + _letters_from(text, i)
    return (start > 0 and text[start - 1].isdigit()) or (end < len(text) and text[end].isdigit())


# A token that is one run of >= 3 letters and one run of digits, glued, in either order:
# "PUTRA13", "81100JOHOR", "2Harbor". Shorter letter runs are codes more often than words
# ("SS23/11" and "PT17920" on Malaysian receipts, "4WD", "10KG"), and interleaved tokens
# (postcodes such as "SW1A", ids such as "A46236K") do not match.
_LETTERS_DIGITS = re.compile(r"(?<![^\W_])([^\W\d_]{3,})(\d+)(?![^\W_])")
_DIGITS_LETTERS = re.compile(r"(?<![^\W_])(\d+)([^\W\d_]{3,})(?![^\W_])")
_ORDINAL = {"ST", "ND", "RD", "TH"}  # "1ST FLOOR" is one word
# Mixed-case print glued: >= 3 lower-case letters, then a capital ("ShahAlam",
# "ChurchLane"). Not a capital whose shape is its lower case's (C O S V W X Z): RapidOCR
# slips on those ("RedwOod", "LakeSide"). Addresses only: names are written that way on
# purpose ("FamilyMart").
_CAMEL = re.compile(r"([a-zß-öø-ÿ]{3})(?=[ABD-NPQRTUYÀ-ÖØ-Þ])")


def split_glued_words(text: str, address: bool = False) -> str:
    """Spaces back at word breaks a glued token shows by itself, for free-text answers:
    a number glued to a word of 3+ letters (names, addresses) and, in an address, a capital
    after lower-case letters. A zoomed crop is read as one text region whose word spaces
    RapidOCR drops; between two letters of one case the gap evidence of `restore_spaces` is
    needed, but these boundaries are word breaks (on 100 held-out synthetic documents 38 of
    50 addresses read from the gold box missed exact match, most on "81100JOHOR"-style
    glue; measured: reports/reader_reconcile/README.md). Not for ids, which are compared
    without spaces."""
    if address:
        text = _CAMEL.sub(r"\1 ", text)
    text = _LETTERS_DIGITS.sub(r"\1 \2", text)
    return _DIGITS_LETTERS.sub(lambda m: m[0] if m[2].upper() in _ORDINAL else f"{m[1]} {m[2]}", text)
