"""Layout guesses for free-text questions: who issued the document, and where.

Without a label to anchor on, a name or address is found by where documents put them:
the issuer's name is a prominent printed segment of the header (the tallest print among
the top rows is a strong cue; otherwise the first one), its address the lines right below
it in the same column until contact details, registration numbers or the document title.
Lines are column segments, so a name is never glued to a label printed beside it.
Inside a crop the same cues pick the line(s) that answer out of everything the crop holds.
Generic on purpose; a learned crop is what is supposed to do better than this.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cropvlm.readers.layout import above, below, rows_of, same_row
from cropvlm.readers.ocr_lines import OcrLine

_NAME_WORDS = re.compile(r"\b(NAME|COMPANY|VENDOR|SUPPLIER|SELLER|MERCHANT|SHOP|STORE|ISSUED|ISSUER)\b", re.I)
_ADDRESS_WORDS = re.compile(r"\bADDRESS|LOCATION|LOCATED\b", re.I)

# Header lines that are not the issuer's name.
_TITLE = re.compile(
    r"^\W*(TAX\s*INVOICE|INVOICE|RECEIPT|OFFICIAL\s*RECEIPT|CASH\s*(SALES?|BILL)?|BILL|WELCOME|"
    r"SIMPLIFIED|COPY|ORIGINAL|DUPLICATE|THANK)",
    re.I,
)
# A document title that ends the line ("COMMERCIAL INVOICE"), or a field label ("DATE OF
# ISSUE", "ISSUED", "Bill To:"): header print that is not a name either.
_NOT_NAME = re.compile(
    r"(INVOICE|RECEIPT)\W*$|:\s*$|\b(DATE|ISSUED?|DUE|NUMBER|NO\.|REF|BILL\s*TO|SHIP\s*TO|TOTAL|AMOUNT)\b|#",
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
# A company registration / tax id line ("(CO.REG:738966-K)", "GST ID: 9423...", "EIN: 38-55"),
# printed between a name and its address; OCR often drops the spaces.
_REGISTRATION = re.compile(
    r"^\W*(CO\.?\s*(REG|NO)|COMPANY\s*(REG|NO)|REG(ISTRATION)?\b|ROC\b|GST|SST|EIN\b|VAT|TAX\s*ID|BRN\b|ABN\b|"
    r"UEN\b)",
    re.I,
)


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
    # An all-lower-case line is a handwritten note or a logo word, not the printed name;
    # names print in capitals or Title Case.
    upper = sum(ch.isupper() for ch in letters) / len(letters)
    words = re.findall(r"[A-Za-z]+", line.text)
    # Letters outside A-Z (e.g. Chinese on Malaysian receipts) make no Latin words at all.
    capitalised = sum(w[0].isupper() for w in words) / len(words) if words else 0.0
    return (upper >= 0.15 or capitalised >= 0.5) and line.height >= min_height \
        and not _TITLE.match(line.text) and not _NOT_NAME.search(line.text)


# A segment this much taller than the first name-like segment of the header is the name
# (a bold, larger vendor name under a small slogan or beside a small address block).
PROMINENT = 1.5


def company_lines(lines: Sequence[OcrLine], search: int = 6) -> list[OcrLine]:
    """The issuer's name: a prominent upper-case segment in the top `search` rows (+ a
    legal-form continuation line such as "SDN BHD" right under it)."""
    if not lines:
        return []
    lines = list(lines)
    heights = sorted(line.height for line in lines)
    min_height = 0.7 * heights[len(heights) // 2]  # tiny header print is a slogan, not the name
    top = [i for row in rows_of(lines)[:search] for i in row]
    names = [i for i in sorted(top) if _looks_printed_name(lines[i], min_height)]
    if not names:
        return []
    first = names[0]
    tallest = max(names, key=lambda i: (lines[i].height, -i))
    chosen = tallest if lines[tallest].height >= PROMINENT * lines[first].height else first
    return _with_legal_continuation(lines, chosen)


def _with_legal_continuation(lines: list[OcrLine], i: int) -> list[OcrLine]:
    line = lines[i]
    chosen = [line]
    under = below(lines, i)
    following = lines[under] if under is not None else None
    if following is not None and not _LEGAL.search(line.text) and _LEGAL.search(following.text) \
            and len(following.text) <= 30 and not _ADDRESS_END.search(following.text):
        chosen.append(following)
    return chosen


def address_lines(lines: Sequence[OcrLine], max_lines: int = 5) -> list[OcrLine]:
    """Lines under the company name, in its column, up to the first contact, registration
    or date row."""
    lines = list(lines)
    company = company_lines(lines)
    if not company:
        return []
    return _block_below(lines, lines.index(company[-1]), max_lines)


# Segments of one address row sit closer than this many text heights apart (a row that
# OCR split at a wide comma or a dropped word); a column gap is wider.
ROW_JOIN = 4.0


def _row_around(lines: list[OcrLine], i: int) -> list[int]:
    """`lines[i]` and the segments of its row chained to it by gaps under ROW_JOIN heights."""
    members = [i]
    for direction in (1, -1):
        current = i
        while True:
            anchor = lines[current]
            options = [j for j in range(len(lines)) if j not in members and same_row(anchor, lines[j])
                       and 0 <= (lines[j].box[0] - anchor.box[2] if direction > 0 else anchor.box[0] - lines[j].box[2])
                       <= ROW_JOIN * max(anchor.height, lines[j].height)]
            if not options:
                break
            current = min(options, key=lambda j: abs(lines[j].box[0] - anchor.box[0]))
            members.append(current)
    return sorted(members, key=lambda j: lines[j].box[0])


def _address_row(text: str) -> bool:
    return bool(_letters(text)) and not _ADDRESS_END.search(text) and not _TITLE.match(text) \
        and not _REGISTRATION.match(text)


def _block_below(lines: list[OcrLine], anchor: int, max_lines: int) -> list[OcrLine]:
    out: list[OcrLine] = []
    current, used = anchor, {anchor}
    while len(out) < max_lines:
        under = below(lines, current, max_gap=2.0)
        if under is None or under in used:
            break
        row = _row_around(lines, under)
        used.update(row)
        current = under
        text = " ".join(lines[j].text.strip() for j in row)
        if (_REGISTRATION.match(text) or _REG_ONLY.match(text)) and not out:
            continue  # registration number printed under the name
        if not _address_row(text):
            break
        out.extend(lines[j] for j in row)
    return out


def crop_text_lines(lines: Sequence[OcrLine], kind: str,
                    frame: tuple[float, float] | None = None) -> list[OcrLine]:
    """The line(s) of a crop that answer a free-text question of `kind`.

    A crop around a value usually holds neighbours too (a label, the line above). For a
    name: the most prominent name-like segment (tallest, then nearest the centre of the
    crop `frame` = (width, height), or of the text when the frame is unknown). For an
    address: the block of lines around the centre, without contact rows or a taller name
    line. Nothing that fits: no lines. Any other question: all lines, as printed.
    """
    lines = list(lines)
    if len(lines) <= 1 or kind not in ("name", "address"):
        return lines
    cx, cy, reach = _centre(lines, frame)

    def off_centre(line: OcrLine) -> float:
        x, y = (line.box[0] + line.box[2]) / 2, line.center_y
        return ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5 / reach

    if kind == "name":
        names = [i for i, line in enumerate(lines) if _looks_printed_name(line, 0.0)]
        if not names:
            return []
        tallest = max(lines[i].height for i in names)
        # Height first (within OCR noise, ~15%), then closeness to the centre.
        best = min(names, key=lambda i: (lines[i].height < 0.85 * tallest, off_centre(lines[i])))
        return _with_legal_continuation(lines, best)
    # address: start from the central row with letters, grow up and down the column.
    usable = [i for i, line in enumerate(lines) if _address_row(line.text)]
    if not usable:
        return []
    seed = min(usable, key=lambda i: off_centre(lines[i]))
    block = [_row_around(lines, seed)]
    heights = [lines[seed].height]

    def grow(step) -> None:
        current = seed
        while True:
            nxt = step(lines, current, max_gap=2.0)
            if nxt is None or any(nxt in row for row in block):
                return
            row = _row_around(lines, nxt)
            text = " ".join(lines[j].text for j in row)
            typical = sorted(heights)[len(heights) // 2]
            if not _address_row(text) or lines[nxt].height >= 1.5 * typical or _cut_off(lines[nxt], typical):
                return  # contact / registration row, title, the taller name line, a cut line
            block.insert(len(block) if step is below else 0, row)
            heights.append(lines[nxt].height)
            current = nxt

    def _cut_off(line: OcrLine, typical: float) -> bool:
        """A line the crop's edge cuts through: short, touching the top or bottom edge."""
        if frame is None or line.height >= 0.75 * typical:
            return False
        return line.box[1] <= 2 or line.box[3] >= frame[1] - 2

    grow(below)
    grow(above)
    return [lines[j] for row in block for j in row]


def _centre(lines: list[OcrLine], frame: tuple[float, float] | None) -> tuple[float, float, float]:
    if frame is not None:
        width, height = frame
        return width / 2, height / 2, max((width ** 2 + height ** 2) ** 0.5 / 2, 1.0)
    x1 = min(line.box[0] for line in lines)
    y1 = min(line.box[1] for line in lines)
    x2 = max(line.box[2] for line in lines)
    y2 = max(line.box[3] for line in lines)
    return (x1 + x2) / 2, (y1 + y2) / 2, max(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5 / 2, 1.0)
