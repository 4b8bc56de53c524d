"""Crop or page: the OCR reader's choice between its two views (cropvlm/readers/reconcile.py).

The engine is a fake that returns fixed lines for the page and for the crop, so each case
is exactly the failure seen in evaluation answers (reports/default_policy/README.md).
"""

from __future__ import annotations

from PIL import Image

from cropvlm.readers.answer_rules import GUESS, Candidate, extract, payment_amounts
from cropvlm.readers.base import ReadRequest
from cropvlm.readers.ocr import OcrReader
from cropvlm.readers.ocr_lines import OcrLine
from cropvlm.readers.reconcile import reconcile, runs_off_crop, values_in
from cropvlm.templates import FieldSpec

TOTAL = FieldSpec("total", "What is the total amount paid?", "amount")
COMPANY = FieldSpec("company", "What is the name of the company that issued this receipt?", "text")
DATE = FieldSpec("date", "What is the date of this receipt?", "date", ("DATE",))

CROP = (200, 100)  # crop size in page pixels: the reader zooms it to 768 x 384
FRAME = (768, 384)


class FakeEngine:
    name = "fake"

    def __init__(self, page_lines, crop_lines):
        self.page_lines, self.crop_lines = list(page_lines), list(crop_lines)
        self.reads = {"page": 0, "crop": 0}

    def read(self, image, crop=False):
        self.reads["crop" if crop else "page"] += 1
        return self.crop_lines if crop else self.page_lines


def line(text: str, x1: float, y1: float, x2: float, height: float = 30, conf: float = 0.9) -> OcrLine:
    return OcrLine(text, conf, (x1, y1, x2, y1 + height))


RECEIPT_PAGE = [
    line("SANYU DESIGN STUDIO ENTERPRISE", 40, 20, 360, height=16, conf=0.8),
    line("NO. 148, JALAN PERMAS 19", 60, 40, 300, height=10, conf=0.8),
    line("Date: 19/10/2018", 40, 120, 200, height=10, conf=0.8),
    line("SUBTOTAL", 40, 300, 120, height=10, conf=0.8), line("380.48", 300, 300, 360, height=10, conf=0.8),
    line("TOTAL", 40, 315, 100, height=10, conf=0.8), line("399.50", 300, 315, 360, height=10, conf=0.8),
    line("CASH", 40, 330, 90, height=10, conf=0.8), line("400.00", 300, 330, 360, height=10, conf=0.8),
]


def answer(page_lines, crop_lines, spec):
    engine = FakeEngine(page_lines, crop_lines)
    reader = OcrReader("rapidocr", 768, engine_factory=lambda name: engine)
    page = Image.new("RGB", (400, 800))
    (result,) = reader.answer([ReadRequest(page, Image.new("RGB", CROP), spec)])
    return result, engine.reads


def test_crop_of_a_total_with_the_cash_row_takes_the_amount_the_page_labels() -> None:
    # The crop shows the two amounts with their labels cut off; alone it would pick the larger.
    crop = [line("399.50", 500, 60, 740), line("400.00", 500, 200, 740)]
    assert extract(crop, TOTAL, "crop").value == "400.00"
    result, reads = answer(RECEIPT_PAGE, crop, TOTAL)
    assert result.value == "399.50" and result.source == "page"
    assert reads == {"page": 1, "crop": 1}


def test_a_page_value_beside_its_label_is_taken_when_the_crop_reads_it_too() -> None:
    labelled = FieldSpec("total", "What is the total amount paid?", "amount", ("TOTAL",))
    crop = [line("412.30", 500, 60, 740), line("399.50", 500, 200, 740)]  # no labels, no CASH row
    result, _ = answer(RECEIPT_PAGE, crop, labelled)
    assert result.value == "399.50" and result.source == "page"
    assert result.confidence == round(1.0 * 0.9, 4)  # labelled on the page, read as well as the crop did


def test_a_page_guess_does_not_overrule_the_crop_that_reads_more() -> None:
    # Small print: the page read the subtotal but not the total under it; both are in the crop.
    page = [line("SUBTOTAL 1,558.28", 40, 300, 200, height=10, conf=0.8), line("TAX 311.66", 40, 315, 200, height=10, conf=0.8)]
    crop = [line("1,558.28", 500, 60, 740, conf=0.9), line("1,869.94", 500, 200, 740, conf=0.9)]
    result, _ = answer(page, crop, TOTAL)
    assert result.value == "1869.94" and result.source == "crop"


def test_a_balance_due_is_owed_not_tendered() -> None:
    # An invoice's "Balance Due" is its total: no reason to prefer the page's subtotal.
    page = [line("Subtotal 1,558.28", 40, 300, 200, height=10, conf=0.8), line("VAT 311.66", 40, 315, 200, height=10),
            line("Balance Due 1,869.94", 40, 330, 200, height=10, conf=0.8)]
    crop = [line("1,558.28", 500, 60, 740), line("1,869.94", 500, 200, 740)]
    result, _ = answer(page, crop, TOTAL)
    assert result.value == "1869.94" and result.source == "crop"
    assert payment_amounts(page) == set()
    assert payment_amounts([line("CASH RM 400.00", 0, 0, 100), line("Paid by VISA 12.00", 0, 40, 100),
                            line("TOTAL PAID 399.50", 0, 80, 100)]) == {"400.00", "12.00"}


def test_unsure_crop_keeps_its_own_answer_when_the_page_value_is_not_in_it() -> None:
    page = [line("Coffee 3.00", 40, 20, 200, height=10, conf=0.5), line("Cake 9.00", 40, 40, 200, height=10, conf=0.5)]
    crop = [line("12.00", 500, 60, 740), line("15.00", 500, 200, 740)]
    result, _ = answer(page, crop, TOTAL)
    assert result.value == "15.00" and result.source == "crop"  # more confident, nothing to confirm


def test_glued_crop_text_gives_way_to_the_same_letters_with_word_breaks() -> None:
    crop = [line("SANYUDESIGNSTUDIOENTERPRISE", 100, 150, 660, height=60)]
    result, _ = answer(RECEIPT_PAGE, crop, COMPANY)
    assert result.text == "SANYU DESIGN STUDIO ENTERPRISE" and result.source == "page"
    # ... and a crop that reads the words keeps its answer (and the better confidence).
    crop = [line("SANYU DESIGN STUDIO ENTERPRISE", 100, 150, 660, height=60, conf=0.99)]
    result, _ = answer(RECEIPT_PAGE, crop, COMPANY)
    assert result.text == "SANYU DESIGN STUDIO ENTERPRISE" and result.source == "crop"
    assert result.confidence == round(0.8 * 0.99, 4)


def test_text_cut_by_the_crop_edge_is_completed_from_the_page() -> None:
    cut = [line("CHERHARDWAREENTERPR", 0, 150, 768, height=60)]
    page = [line("FISCHER HARDWARE ENTERPRISE", 40, 20, 360, height=16, conf=0.7)] + RECEIPT_PAGE[1:]
    result, _ = answer(page, cut, COMPANY)
    assert result.text == "FISCHER HARDWARE ENTERPRISE" and result.source == "page"
    # The same letters well inside the crop are what the policy chose: kept.
    inside = [line("HARDWARE ENTERPRISE", 100, 150, 660, height=60, conf=0.7)]
    result, _ = answer(page, inside, COMPANY)
    assert result.text == "HARDWARE ENTERPRISE" and result.source == "crop"


def test_a_name_crop_without_a_name_is_a_weak_guess_the_page_overrules() -> None:
    crop = [line("GST ID: 656781329660", 100, 100, 660), line("(JM0352019-K)", 100, 200, 500)]
    candidate = extract(crop, COMPANY, "crop", FRAME)
    assert candidate.strength == GUESS and "656781329660" in candidate.text
    result, _ = answer(RECEIPT_PAGE, crop, COMPANY)
    assert result.text == "SANYU DESIGN STUDIO ENTERPRISE" and result.source == "page"


def test_a_labelled_crop_answer_is_not_second_guessed() -> None:
    crop = [line("Date: 19/10/2018", 100, 150, 660)]
    result, reads = answer(RECEIPT_PAGE, crop, DATE)
    assert result.value == "2018-10-19" and result.source == "crop"
    assert reads == {"page": 0, "crop": 1}


def test_fields_that_need_the_page_share_one_read_of_it() -> None:
    engine = FakeEngine(RECEIPT_PAGE, [line("SANYUDESIGNSTUDIOENTERPRISE", 100, 150, 660, height=60)])
    reader = OcrReader("rapidocr", 768, engine_factory=lambda name: engine)
    page, other = Image.new("RGB", (400, 800)), Image.new("RGB", (400, 800))
    crop = Image.new("RGB", CROP)
    answers = reader.answer([ReadRequest(page, crop, COMPANY), ReadRequest(page, crop, TOTAL),
                             ReadRequest(other, crop, COMPANY)])
    assert [a.value for a in answers] == ["SANYU DESIGN STUDIO ENTERPRISE", "399.50", "SANYU DESIGN STUDIO ENTERPRISE"]
    assert engine.reads == {"page": 2, "crop": 1}  # one read per distinct page and crop


def test_empty_views_and_helpers() -> None:
    empty = Candidate("", None, 0.0, 0.0)
    some = Candidate("60.30", "60.30", 0.45, 0.9)
    assert reconcile(empty, some, [], [], "amount", FRAME) == (some, "page")
    assert reconcile(some, empty, [], [], "amount", FRAME) == (some, "crop")
    lines = [line("RM 1,234.50 on 02/03/2018 ref INV-2041", 10, 10, 700)]
    assert values_in(lines, "amount") == {"1234.50"}
    assert values_in(lines, "date") == {"2018-03-02"}
    assert "INV-2041" in values_in(lines, "id")
    assert runs_off_crop([line("x", 0, 0, 100)], 768) and runs_off_crop([line("x", 700, 0, 767)], 768)
    assert not runs_off_crop([line("x", 50, 0, 700)], 768)
