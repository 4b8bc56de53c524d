"""Layout guesses for free-text questions on a whole page: who issued it, and where.

Without a label to anchor on, a name or address is found by where documents put them:
the issuer's name is the first prominent printed line of the header, its address the
lines right below until contact details, registration numbers or the document title.
Generic on purpose; a learned crop is what is supposed to do better than this.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cropvlm.readers.ocr_lines import OcrLine

_NAME_WORDS = re.compile(r"\b(NAME|COMPANY|VENDOR|SUPPLIER|SELLER|MERCHANT|SHOP|STORE|ISSUED|ISSUER)\b", re.I)
_ADDRESS_WORDS = re.compile(r"\bADDRESS|LOCATION|LOCATED\b", re.I)

# Header lines that are not the issuer's name.
_TITLE = re.compile(
    r"^\W*(TAX\s*INVOICE|INVOICE|RECEIPT|OFFICIAL\s*RECEIPT|CASH\s*(SALES?|BILL)?|BILL|WELCOME|"
    r"SIMPLIFIED|COPY|ORIGINAL|DUPLICATE|THANK)",
    re.I,
)
# Legal-form words that end a company name printed over two lines.
_LEGAL = re.compile(r"\b(SDN|BHD|BERHAD|LTD|LIMITED|LLC|INC|GMBH|PLC|CORP|CO|ENTERPRISE|TRADING|S/B)\b", re.I)
# Rows that end an address block: contact details, tax/registration ids, dates, titles.
_ADDRESS_END = re.compile(
    r"\b(TEL|PHONE|FAX|H/P|HP|MOBILE|EMAIL|E-MAIL|WWW|HTTP|GST|SST|REG|ROC|INVOICE|RECEIPT|DATE|"
    r"CASHIER|TABLE|DOC|BILL|NO\s*:)\b|@|\d{1,2}[/-]\d{1,2}[/-]\d{2,4}",
    re.I,
)
_REG_ONLY = re.compile(r"^\W*\(?[A-Z0-9\-]*\d[A-Z0-9\-]*\)?\W*$", re.I)  # "(JM0352019-K)"


def question_kind(question: str) -> str:
    """"address", "name" or "other", from the question's wording."""
    if _ADDRESS_WORDS.search(question):
        return "address"
    if _NAME_WORDS.search(question):
        return "name"
    return "other"


def _letters(text: str) -> list[str]:
    return [ch for ch in text if ch.isalpha()]


def _looks_printed_name(line: OcrLine, min_height: float) -> bool:
    letters = _letters(line.text)
    if len(letters) < 3 or len(letters) < 0.6 * len(line.text.replace(" ", "")):
        return False
    # An all-lower-case line is a handwritten note or a logo word, not the printed name.
    upper = sum(ch.isupper() for ch in letters) / len(letters)
    return upper >= 0.15 and line.height >= min_height and not _TITLE.match(line.text)


def company_lines(lines: Sequence[OcrLine], search: int = 6) -> list[OcrLine]:
    """The issuer's name: first prominent upper-case line near the top (+ a legal-form
    continuation line such as "SDN BHD")."""
    if not lines:
        return []
    heights = sorted(line.height for line in lines)
    min_height = 0.7 * heights[len(heights) // 2]  # tiny header print is a slogan, not the name
    for i, line in enumerate(lines[:search]):
        if _looks_printed_name(line, min_height):
            chosen = [line]
            following = lines[i + 1] if i + 1 < len(lines) else None
            if following is not None and not _LEGAL.search(line.text) and _LEGAL.search(following.text) \
                    and len(following.text) <= 30 and not _ADDRESS_END.search(following.text):
                chosen.append(following)
            return chosen
    return []


def address_lines(lines: Sequence[OcrLine], max_lines: int = 5) -> list[OcrLine]:
    """Lines after the company name up to the first contact/registration/date row."""
    company = company_lines(lines)
    if not company:
        return []
    start = list(lines).index(company[-1]) + 1
    out: list[OcrLine] = []
    for line in lines[start:]:
        text = line.text.strip()
        if _REG_ONLY.match(text) and not out:
            continue  # registration number printed under the name
        if _ADDRESS_END.search(text) or _TITLE.match(text) or not _letters(text):
            break
        out.append(line)
        if len(out) == max_lines:
            break
    return out
