"""OcrReader: pixel budget, crop zoom, page fallback, caching, answer rules, both engines.

Images are drawn here with a TrueType font, so the expected answers are known exactly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from cropvlm.errors import ReaderError
from cropvlm.readers.answer_rules import extract
from cropvlm.readers.base import ReadRequest
from cropvlm.readers.ocr import OcrReader, apply_budget
from cropvlm.readers.ocr_engines import TesseractEngine, make_engine
from cropvlm.readers.ocr_lines import OcrLine, merge_into_lines, segment_lines, split_row
from cropvlm.templates import FieldSpec

FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
]
FONT_PATH = next((p for p in FONT_CANDIDATES if Path(p).exists()), None)
needs_font = pytest.mark.skipif(FONT_PATH is None, reason="no TrueType font found")
HAS_TESSERACT = shutil.which("tesseract") is not None
try:
    import rapidocr_onnxruntime  # noqa: F401

    HAS_RAPIDOCR = True
except ImportError:
    HAS_RAPIDOCR = False

ENGINES = [
    pytest.param("rapidocr", marks=pytest.mark.skipif(not HAS_RAPIDOCR, reason="rapidocr not installed")),
    pytest.param("tesseract", marks=pytest.mark.skipif(not HAS_TESSERACT, reason="no tesseract binary")),
]

COMPANY = FieldSpec("company", "What is the name of the company that issued this receipt?", "text")
DATE = FieldSpec("date", "What is the date of this receipt?", "date", ("DATE",))
TOTAL = FieldSpec("total", "What is the total amount paid?", "amount", ("TOTAL", "GRAND TOTAL"))
INVOICE = FieldSpec("invoice_number", "What is the invoice number?", "id", ("INVOICE NO", "INVOICE"))
ADDRESS = FieldSpec("address", "What is the address of the company?", "text")

PAGE_LINES = [
    "ACME TRADING SDN BHD",
    "12 JALAN MERAH, 81100 JOHOR",
    "TEL: 07-1234567",
    "Invoice No: INV-2041",
    "Date: 19/10/2018",
    "Subtotal 55.00",
    "Tax 5.30",
    "TOTAL 60.30",
]


def draw_page(lines, size=(800, 1000), font_size=30, origin=(60, 60), spacing=1.8) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT_PATH, font_size)
    x, y = origin
    for text in lines:
        draw.text((x, y), text, fill="black", font=font)
        y += int(font_size * spacing)
    return image


@pytest.fixture(scope="module")
def page() -> Image.Image:
    if FONT_PATH is None:
        pytest.skip("no TrueType font found")
    return draw_page(PAGE_LINES)


# --- both real engines ---------------------------------------------------------------------


@needs_font
@pytest.mark.parametrize("engine", ENGINES)
def test_reads_typed_fields_from_a_page(engine: str, page: Image.Image) -> None:
    reader = OcrReader(engine, budget=768)
    assert reader.version == f"ocr:{engine}@768"
    answers = reader.answer([ReadRequest(page, None, s) for s in (TOTAL, DATE, INVOICE, COMPANY, ADDRESS)])
    total, date, invoice, company, address = answers
    assert total.value == "60.30" and total.source == "page"
    assert date.value == "2018-10-19"
    assert invoice.value == "INV-2041"
    # RapidOCR's recogniser often drops the spaces between words (a model limit), so
    # free text is compared without them here.
    assert company.value.replace(" ", "") == "ACMETRADINGSDNBHD"
    assert address.value.replace(" ", "") == "12JALANMERAH81100JOHOR"
    assert all(0.5 < a.confidence <= 1.0 for a in (total, date, invoice))
    assert company.confidence < total.confidence  # layout guess < labelled value


@needs_font
@pytest.mark.parametrize("engine", ENGINES)
def test_crop_zooms_tiny_text_lost_on_the_whole_page(engine: str) -> None:
    # 3000x4000 page, 24 px text: at budget 768 it shrinks to ~4.6 px, unreadable;
    # the crop around it is zoomed to 768 px and read.
    big = draw_page(["TOTAL 60.30"], size=(3000, 4000), font_size=24, origin=(2000, 3000))
    crop = big.crop((1950, 2970, 2250, 3050))
    reader = OcrReader(engine, budget=768)
    no_crop, with_crop = reader.answer([ReadRequest(big, None, TOTAL), ReadRequest(big, crop, TOTAL)])
    assert no_crop.value is None and no_crop.confidence == 0.0
    assert with_crop.value == "60.30" and with_crop.source == "crop"
    assert OcrReader(engine, budget=None).answer([ReadRequest(big, None, TOTAL)])[0].value == "60.30"


@needs_font
@pytest.mark.parametrize("engine", ENGINES)
def test_crop_without_the_answer_falls_back_to_the_page(engine: str, page: Image.Image) -> None:
    blank_crop = page.crop((500, 900, 780, 990))
    (answer,) = OcrReader(engine, budget=768).answer([ReadRequest(page, blank_crop, DATE)])
    assert answer.value == "2018-10-19" and answer.source == "page"


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_image_gives_empty_answer(engine: str) -> None:
    blank = Image.new("RGB", (600, 800), "white")
    tiny = Image.new("RGB", (1, 1), "white")
    answers = OcrReader(engine).answer([ReadRequest(blank, None, TOTAL), ReadRequest(blank, tiny, COMPANY)])
    assert [(a.text, a.value, a.confidence) for a in answers] == [("", None, 0.0), ("", None, 0.0)]


# --- caching, laziness, configuration (fake engine, no OCR) --------------------------------


class FakeEngine:
    name = "fake"

    def __init__(self, page_lines, crop_lines=()):
        self.page_lines, self.crop_lines = list(page_lines), list(crop_lines)
        self.calls: list[tuple[tuple[int, int], bool]] = []

    def read(self, image, crop=False):
        self.calls.append((image.size, crop))
        return self.crop_lines if crop else self.page_lines


def lines_of(*texts: str) -> list[OcrLine]:
    return [OcrLine(t, 0.9, (10, 40 * i, 300, 40 * i + 30)) for i, t in enumerate(texts)]


def fake_reader(engine: FakeEngine, budget=768) -> OcrReader:
    return OcrReader("rapidocr", budget, engine_factory=lambda name: engine)


def test_page_is_read_once_for_all_fields_and_identical_crops_once() -> None:
    engine = FakeEngine(lines_of("ACME SDN BHD", "Date: 19/10/2018", "TOTAL 60.30"), lines_of("TOTAL 9.99"))
    page, other = Image.new("RGB", (400, 800)), Image.new("RGB", (400, 800))
    crop_a, crop_b = Image.new("RGB", (100, 50)), Image.new("RGB", (100, 50))  # equal pixels
    reader = fake_reader(engine)
    answers = reader.answer([
        ReadRequest(page, None, COMPANY), ReadRequest(page, None, DATE), ReadRequest(page, None, TOTAL),
        ReadRequest(page, crop_a, TOTAL), ReadRequest(page, crop_b, TOTAL), ReadRequest(other, None, DATE),
    ])
    assert [a.value for a in answers] == ["ACME SDN BHD", "2018-10-19", "60.30", "9.99", "9.99", "2018-10-19"]
    assert [c[1] for c in engine.calls].count(False) == 2  # one per distinct page
    assert [c[1] for c in engine.calls].count(True) == 1  # equal crops read once
    assert engine.calls[0][0] == (384, 768)  # page shrunk to the budget
    assert (768, 384) in [c[0] for c in engine.calls]  # crop zoomed to the budget


def test_page_is_not_read_when_the_crop_answers() -> None:
    engine = FakeEngine(lines_of("TOTAL 1.00"), lines_of("GRAND TOTAL RM 60.30"))
    page = Image.new("RGB", (400, 800))
    (answer,) = fake_reader(engine).answer([ReadRequest(page, Image.new("RGB", (90, 30)), TOTAL)])
    assert answer.value == "60.30" and answer.source == "crop"
    assert all(crop for _, crop in engine.calls)


def test_full_resolution_budget_keeps_pixels() -> None:
    engine = FakeEngine(lines_of("x"))
    reader = fake_reader(engine, budget=None)
    assert reader.version == "ocr:rapidocr@full"
    reader.answer([ReadRequest(Image.new("RGB", (1234, 2345)), None, COMPANY)])
    assert engine.calls[0][0] == (1234, 2345)
    assert apply_budget(Image.new("L", (100, 50)), 768).size == (768, 384)


def test_bad_configuration_and_missing_binary(monkeypatch) -> None:
    with pytest.raises(ReaderError, match="unknown OCR engine"):
        OcrReader("easyocr")
    with pytest.raises(ReaderError, match="budget"):
        OcrReader("rapidocr", budget=0)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ReaderError, match="tesseract binary"):
        TesseractEngine()
    reader = OcrReader("tesseract")  # engine created lazily: the error comes on first use
    with pytest.raises(ReaderError, match="tesseract binary"):
        reader.answer([ReadRequest(Image.new("RGB", (50, 50)), None, TOTAL)])
    with pytest.raises(ReaderError):
        make_engine("nope")


# --- answer rules and line merging (no OCR) -------------------------------------------------


def test_total_skips_subtotal_tax_and_qty_and_follows_rounding() -> None:
    lines = lines_of("SUB TOTAL 55.90", "TOTAL QTY 2", "TOTAL GST 3.35", "TOTAL AMT RM 60.31",
                     "ROUNDING ADJ -0.01", "RM 60.30", "CASH RM 70.30", "CHANGE RM 10.00")
    candidate = extract(lines, TOTAL)
    assert candidate.value == "60.30" and candidate.strength == 1.0


def test_total_prefers_largest_total_row_and_label_above_value() -> None:
    assert extract(lines_of("Total 0.00", "Total Sales: 327.00", "TOTAL: 26.00"), TOTAL).value == "327.00"
    assert extract(lines_of("GRAND TOTAL", "RM 88.10"), TOTAL).value == "88.10"


def test_unlabelled_amount_is_a_weaker_guess() -> None:
    labelled = extract(lines_of("TOTAL 12.00"), TOTAL)
    guessed = extract(lines_of("Coffee 3.00", "Cake 12.00"), TOTAL)
    assert guessed.value == "12.00" and guessed.confidence < labelled.confidence


def test_id_token_after_alias_and_date_near_alias() -> None:
    lines = lines_of("TAX INVOICE", "Order 77 on 01/01/2017", "Invoice No: INV-2041", "Date: 02/03/2018")
    assert extract(lines, INVOICE).text == "INV-2041"
    date = extract(lines, DATE)
    assert date.value == "2018-03-02" and date.text == "02/03/2018" and date.strength == 1.0
    assert extract(lines_of("no date here"), DATE).value is None


def test_an_unlabelled_date_in_a_crop_is_not_an_id() -> None:
    # A crop around an invoice header: the date printed beside the number is no guess for it.
    crop = lines_of("20-JUL-2019", "A46236")
    unlabelled = FieldSpec("invoice_number", "What is the invoice number?", "id")
    assert extract(crop, unlabelled, "crop").text == "A46236"
    assert extract(lines_of("20-JUL-2019"), unlabelled, "crop").text == ""


def test_crop_text_joins_lines_without_aliases() -> None:
    spec = FieldSpec("vendor", "Who is the vendor?", "text", ("VENDOR",))
    assert extract(lines_of("Vendor: ACME", "TRADING CO"), spec, "crop").text == "ACME"
    assert extract(lines_of("ACME", "TRADING CO"), spec, "crop").text == "ACME TRADING CO"


def test_company_skips_handwriting_and_titles_address_stops_at_contacts() -> None:
    lines = lines_of("tan woon yann", "TAX INVOICE", "INDAH GIFT & HOME DECO", "(123456-K)",
                     "27, JALAN DEDAP 13,", "81100 JOHOR BAHRU.", "Tel: 07-3507405", "19/10/2018")
    assert extract(lines, COMPANY).text == "INDAH GIFT & HOME DECO"
    assert extract(lines, ADDRESS).text == "27, JALAN DEDAP 13, 81100 JOHOR BAHRU"


def test_merge_into_lines_orders_pieces_by_row_then_x() -> None:
    pieces = [
        OcrLine("60.30", 0.9, (400, 102, 480, 128)),
        OcrLine("TOTAL", 0.8, (10, 100, 90, 126)),
        OcrLine("ACME", 1.0, (10, 10, 90, 36)),
        OcrLine("CASH", 0.9, (10, 140, 90, 166)),
    ]
    merged = merge_into_lines(pieces)
    assert [line.text for line in merged] == ["ACME", "TOTAL 60.30", "CASH"]
    assert merged[1].box == (10, 100, 480, 128)


# --- column segments and label -> value layout (no OCR) -------------------------------------

VENDOR = FieldSpec("vendor", "What is the name of the vendor that issued this invoice?", "text")
INVOICE_NO = FieldSpec("invoice_number", "What is the invoice number?", "id",
                       ("INVOICE NO", "INVOICE NUMBER", "INVOICE #", "INV NO", "INVOICE"))
INVOICE_DATE = FieldSpec("invoice_date", "What is the invoice date?", "date", ("INVOICE DATE", "DATE", "DATE OF ISSUE"))
TOTAL_DUE = FieldSpec("total_amount", "What is the total amount due?", "amount", ("TOTAL", "TOTAL DUE", "AMOUNT DUE"))


def piece(text: str, x: float, y: float, height: float = 14, char: float = 7.0) -> OcrLine:
    """A piece of text at (x, y) whose width follows its length."""
    return OcrLine(text, 0.95, (x, y, x + char * len(text), y + height))


def two_column_header() -> list[OcrLine]:
    # Left: vendor block. Right: label column at x=290, value column at x=365, rows offset
    # by a few pixels from the left column's rows (the usual case on real invoices).
    return segment_lines([
        piece("INVOICE", 400, 10, height=24, char=14),
        piece("Schneider Engineering GmbH", 40, 48, height=18, char=9),
        piece("54 Market St.", 40, 70),
        piece("Invoice No.", 290, 66), piece("003752", 365, 65),
        piece("Berlin 10115", 40, 88),
        piece("Due Date", 290, 84), piece("30/12/2021", 365, 83),
        piece("Date", 290, 102), piece("04/12/2021", 365, 101),
        piece("Tel. 030 1234567", 40, 106),
    ])


def test_segments_split_rows_at_column_gaps_and_keep_phrases_together() -> None:
    pieces = [piece("54", 40, 70), piece("Market", 58, 70), piece("St.", 104, 70),  # word gaps
              piece("003752", 365, 71), piece("04/12/2021", 430, 70)]
    merged = merge_into_lines(pieces)
    assert [line.text for line in merged] == ["54 Market St. 003752 04/12/2021"]  # rows unchanged
    segments = segment_lines(pieces)
    assert [s.text for s in segments] == ["54 Market St.", "003752", "04/12/2021"]
    assert segments[0].box == (40, 70, 125, 84)
    assert split_row(sorted(pieces, key=lambda p: p.box[0]), gap=100.0) == [sorted(pieces, key=lambda p: p.box[0])]


def test_value_is_taken_from_the_segment_right_of_its_label_not_the_glued_row() -> None:
    lines = two_column_header()
    assert "54 Market St." in [line.text for line in lines]
    number = extract(lines, INVOICE_NO)
    assert number.text == "003752" and number.strength == 1.0
    date = extract(lines, INVOICE_DATE)
    assert date.value == "2021-12-04"  # "Date", not the qualified "Due Date" read first
    vendor = extract(lines, VENDOR)
    assert vendor.text == "Schneider Engineering GmbH"  # not glued to "Invoice No." or the title


def test_value_printed_under_its_label() -> None:
    lines = segment_lines([
        piece("INVOICE NUMBER", 300, 100), piece("INVOICE DATE", 460, 100),
        piece("2018-7537", 300, 120), piece("August 14, 2019", 460, 120),
        piece("Description", 40, 200), piece("Amount", 460, 200),
        piece("TOTAL DUE", 300, 400), piece("USD 1, 234.50", 300, 420),
    ])
    assert extract(lines, INVOICE_NO).text == "2018-7537"
    date = extract(lines, INVOICE_DATE)
    assert date.value == "2019-08-14" and date.text == "August 14, 2019"  # the whole printed date
    assert extract(lines, TOTAL_DUE).value == "1234.50"


def test_title_over_an_address_gives_no_invoice_number_and_dates_are_not_ids() -> None:
    lines = segment_lines([piece("INVOICE", 40, 20, height=24, char=14), piece("54 Market St.", 40, 50),
                           piece("INVOICE", 400, 120), piece("01/26/2023", 400, 140)])
    assert extract(lines, INVOICE_NO).text == ""


def test_receipt_total_label_and_value_far_apart_with_rounding_row() -> None:
    lines = segment_lines([piece("TOTAL AMT", 20, 100), piece("RM 60.31", 400, 101),
                           piece("ROUNDING ADJ", 20, 120), piece("-0.01", 400, 121),
                           piece("RM 60.30", 400, 140), piece("CASH", 20, 160), piece("70.30", 400, 160)])
    candidate = extract(lines, TOTAL)
    assert candidate.value == "60.30" and candidate.strength == 1.0


def test_company_is_the_prominent_header_segment_and_address_its_column() -> None:
    lines = segment_lines([
        piece("thank you come again", 120, 5, height=10, char=5),
        piece("Official Receipt", 40, 40),
        piece("KEDAI BESAR SDN BHD", 40, 60, height=26, char=13),
        piece("INVOICE NO", 400, 62), piece("A-77", 480, 62),
        piece("(CO.REG: 738966-K)", 40, 92),
        piece("NO. 12, JALAN MERAH,", 40, 110), piece("DATE", 400, 110), piece("19/10/2018", 480, 110),
        piece("81100 JOHOR BAHRU.", 40, 128),
        piece("TEL: 07-1234567", 40, 146),
    ])
    assert extract(lines, COMPANY).text == "KEDAI BESAR SDN BHD"
    assert extract(lines, ADDRESS).text == "NO. 12, JALAN MERAH, 81100 JOHOR BAHRU"


def test_crop_text_is_the_line_that_fits_the_question_not_everything_in_the_crop() -> None:
    crop_lines = segment_lines([
        piece("Tel. (555) 010-2030", 60, 5, height=12, char=6),
        piece("BLUE HARBOR TRADING", 30, 40, height=30, char=16),
        piece("212 Harbor Blvd", 60, 90, height=16, char=8),
    ])
    name = extract(crop_lines, COMPANY, "crop", (400, 120))
    assert name.text == "BLUE HARBOR TRADING"
    address_crop = segment_lines([
        piece("BLUE HARBO", 40, 0, height=9, char=9),  # cut by the crop's top edge
        piece("212 Harbor Blvd", 40, 30, height=18, char=9),
        piece("San Francisco, CA 94107", 20, 54, height=18, char=9),
        piece("Tel. (555) 010-2030", 30, 78, height=18, char=9),
    ])
    address = extract(address_crop, ADDRESS, "crop", (260, 100))
    assert address.text == "212 Harbor Blvd San Francisco, CA 94107"
    # Other free-text questions keep the whole crop.
    other = FieldSpec("note", "What does the note say?", "text")
    assert extract(crop_lines, other, "crop").text.startswith("Tel.")


@needs_font
@pytest.mark.parametrize("engine", ENGINES)
def test_two_column_header_drawn_and_read(engine: str) -> None:
    image = Image.new("RGB", (1000, 700), "white")
    draw = ImageDraw.Draw(image)
    font, big = ImageFont.truetype(FONT_PATH, 24), ImageFont.truetype(FONT_PATH, 36)
    draw.text((60, 60), "Schneider Engineering GmbH", fill="black", font=big)
    for i, text in enumerate(["54 Market Street", "10115 Berlin", "Tel. 030 1234567"]):
        draw.text((60, 130 + 42 * i), text, fill="black", font=font)
    for i, (label, value) in enumerate([("Invoice No.", "003752"), ("Date", "04/12/2021"), ("Due Date", "03/01/2022")]):
        draw.text((600, 126 + 42 * i), label, fill="black", font=font)
        draw.text((800, 126 + 42 * i), value, fill="black", font=font)
    draw.text((600, 400), "Total Due", fill="black", font=font)
    draw.text((800, 400), "1,234.50", fill="black", font=font)
    number, date, total, vendor = OcrReader(engine, budget=1000).answer(
        [ReadRequest(image, None, s) for s in (INVOICE_NO, INVOICE_DATE, TOTAL_DUE, VENDOR)])
    assert number.value == "003752"
    assert date.value == "2021-12-04"
    assert total.value == "1234.50"
    assert vendor.value.replace(" ", "") == "SCHNEIDERENGINEERINGGMBH"



def test_a_header_line_without_latin_words_is_not_a_crash():
    # RapidOCR reads Chinese shop names on Malaysian receipts: letters, but no A-Z words.
    from cropvlm.readers.answer_text import _looks_printed_name
    from cropvlm.readers.ocr_lines import OcrLine

    assert _looks_printed_name(OcrLine("海洋百货公司", 0.9, (0, 0, 100, 20)), min_height=10) is False
