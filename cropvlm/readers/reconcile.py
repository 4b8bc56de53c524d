"""Crop or page: which of the two answers the OCR reader gives.

A crop is read at a higher zoom, the page with all its context. Each view fails in its own
way, and the other one shows it:
- a crop of a receipt's total also shows the cash tendered under it, with its CASH label
  cut off: the crop alone cannot tell the two amounts apart, the page can (it sees the
  labels). When the crop is unsure, the page's value is one the crop reads too, and the
  page had a reason for it - found beside its label, or the crop's pick is a payment on
  the page - the page chose it and the crop confirms it was read right. (A page's
  unlabelled guess is no reason: it is the largest amount it could read, and the crop
  reads more.)
- RapidOCR drops word spaces in zoomed, tightly set lines ("SANYUDESIGNSTUDIO"); it does
  not invent them. Same letters from both views: the reading with the word breaks wins.
- a crop edge through a line cuts a name or an address ("CHERHARDWAREENTERPR"): the page
  reads the whole line. A crop text touching the crop's side that is part of the page's
  answer gives way to the page's.
Everything else: the more confident answer, as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from cropvlm.normalize import find_date_spans, format_amount, normalize_value
from cropvlm.readers.answer_rules import LABELLED, STRONG, Candidate, id_tokens, money_amounts, payment_amounts
from cropvlm.readers.ocr_lines import OcrLine

# A line whose box comes this close to the crop's left or right side (fraction of the
# crop's width) runs on beyond it.
EDGE = 0.01


def reconcile(crop: Candidate, page: Candidate, crop_lines: Sequence[OcrLine], page_lines: Sequence[OcrLine],
              answer_type: str, frame: tuple[float, float]) -> tuple[Candidate, str]:
    """(answer, "crop" or "page") from the crop's and the page's best candidates and the
    lines each was read from; `frame` is the (width, height) the crop was read at."""
    if not crop.text:
        return page, "page"
    if not page.text:
        return crop, "crop"
    if answer_type == "text":
        crop_letters, page_letters = squeeze(crop.text), squeeze(page.text)
        if crop_letters == page_letters:
            agreed = crop if word_count(crop.text) >= word_count(page.text) else page
            return _confirmed(agreed, crop, page), "crop" if agreed is crop else "page"
        if crop_letters and crop_letters in page_letters and runs_off_crop(crop.used, frame[0]):
            return page, "page"
    elif crop.strength < STRONG and page.value is not None and page.value in values_in(crop_lines, answer_type) \
            and (page.strength >= LABELLED or answer_type == "amount" and crop.value in payment_amounts(page_lines)):
        return _confirmed(page, crop, page), "page"
    return (page, "page") if page.confidence > crop.confidence else (crop, "crop")


def _confirmed(answer: Candidate, crop: Candidate, page: Candidate) -> Candidate:
    """Both views read this answer: as strong and as well read as the better of the two."""
    return replace(answer, strength=max(crop.strength, page.strength),
                   ocr_confidence=max(crop.ocr_confidence, page.ocr_confidence))


def squeeze(text: str) -> str:
    """Letters and digits only, upper case: what two readings of one line share."""
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def word_count(text: str) -> int:
    return len(re.findall(r"[0-9A-Za-z]+", text))


def runs_off_crop(lines: Sequence[OcrLine], width: float) -> bool:
    """Whether any of `lines` touches the left or right side of a crop `width` wide."""
    margin = EDGE * width
    return any(line.box[0] <= margin or line.box[2] >= width - margin for line in lines)


def values_in(lines: Sequence[OcrLine], answer_type: str) -> set[str]:
    """Every value of `answer_type` printed in `lines`, normalised."""
    found: set[str] = set()
    for line in lines:
        if answer_type == "amount":
            found.update(format_amount(v) for v in money_amounts(line.text))
        elif answer_type == "date":
            found.update(iso for iso, _, _ in find_date_spans(line.text))
        elif answer_type == "id":
            found.update(v for v in (normalize_value(t, "id") for t in id_tokens(line.text)) if v)
    return found
