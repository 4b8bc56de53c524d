"""Drawn pages, OCR-line builders and field specs shared by the OCR reader's tests."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from cropvlm.readers.ocr_lines import OcrLine, segment_lines
from cropvlm.templates import FieldSpec

FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
]
FONT_PATH = next((p for p in FONT_CANDIDATES if Path(p).exists()), None)
needs_font = pytest.mark.skipif(FONT_PATH is None, reason="no TrueType font found")
HAS_TESSERACT = shutil.which("tesseract") is not None
HAS_RAPIDOCR = importlib.util.find_spec("rapidocr_onnxruntime") is not None

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


def lines_of(*texts: str) -> list[OcrLine]:
    return [OcrLine(t, 0.9, (10, 40 * i, 300, 40 * i + 30)) for i, t in enumerate(texts)]



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
