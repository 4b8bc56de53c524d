"""Put back the word spaces a CTC recogniser drops inside tightly set lines.

RapidOCR often emits no space between words set close together, on a zoomed bold shop
name (`SANYUDESIGNSTUDIOENTERPRISE`) as on small print read from a whole page
(`SYARIKATPERNIAGAAN GIN KEE`). Its character positions (CTC columns,
`return_word_box=True`) still show the word gaps: a gap between two characters of
>= 1.45x the piece's median character pitch is a word break. Measured on synthetic
text-field crops (`benchmarks/ocr_space_gaps.py`): 11 of 16 dropped word breaks sit above
that ratio and none of 151 gaps inside words. On real receipts read at 768 px (company and
address pieces of 40 SROIE train receipts): 44 of 66 dropped spaces between letters or
digits recovered, 6 of 1,699 other gaps split.

Every piece is searched, with or without spaces of its own, but only between two
characters that are letters or digits and not both digits (amounts and numbers stay
whole); punctuation compares as a space anyway (`normalize_text`).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence

GAP_RATIO = 1.45  # word gap / median character pitch
MIN_PITCHES = 3  # character gaps needed for a median pitch to trust


def restore_spaces(text: str, centres: Sequence[float], ratio: float = GAP_RATIO) -> str:
    """`text` with a space inserted at wide gaps between two characters; `centres` are the
    x centres of its characters (one per character, spaces included), left to right."""
    if len(centres) != len(text):
        return text
    chars = [i for i, ch in enumerate(text) if not ch.isspace()]
    pitches = [centres[b] - centres[a] for a, b in zip(chars, chars[1:])]  # as measured: across spaces too
    if len(pitches) < MIN_PITCHES:
        return text
    pitch = statistics.median(pitches)
    if pitch <= 0:
        return text
    breaks = {b for a, b in zip(chars, chars[1:])
              if b == a + 1 and centres[b] - centres[a] >= ratio * pitch and _word_chars(text[a], text[b])}
    return "".join((" " if i in breaks else "") + ch for i, ch in enumerate(text))


def _word_chars(left: str, right: str) -> bool:
    return left.isalnum() and right.isalnum() and not (left.isdigit() and right.isdigit())


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
