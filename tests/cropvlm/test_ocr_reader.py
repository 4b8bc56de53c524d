"""OcrReader: pixel budget, crop zoom, page fallback, caching, both real engines.

Images are drawn with a TrueType font (`ocr_helpers`), so the expected answers are known
exactly. The answer rules alone, on OCR lines built in code: `test_answer_rules.py`.
"""

from __future__ import annotations

import shutil

import pytest
from PIL import Image, ImageDraw, ImageFont

from cropvlm.errors import ReaderError
from cropvlm.readers.base import ReadRequest
from cropvlm.readers.ocr import OcrReader, apply_budget
from cropvlm.readers.ocr_engines import TesseractEngine, make_engine
from tests.cropvlm.ocr_helpers import (ADDRESS, COMPANY, DATE, ENGINES, FONT_PATH, INVOICE, INVOICE_DATE,
                                       INVOICE_NO, PAGE_LINES, TOTAL, TOTAL_DUE, VENDOR, draw_page, lines_of,
                                       needs_font)


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



