"""`generate_document`: one synthetic invoice or receipt with its gold fields.

Gold conventions (what a labeller would key in, SROIE-style):
- text (company, vendor): the name exactly as printed on its line.
- address: the printed lines joined by single spaces (commas kept as printed).
- date: the date exactly as printed, in its printed format; a time beside it is excluded.
- amount: the printed number without currency or label ("1,234.50", "60.30", "1.234,50").
- id: the invoice number as printed, without its label.
`box` encloses just the value text on page `page_number` (1-based), in percent of that
page (PDF) or of that degraded image (raster formats).

Page rule for raster formats: png and jpeg hold one image, so invoices generated for them
are always single-page; pdf and tiff allow the ~25% two-page invoices (tiff: one frame
per page).

Languages: "en" (the default) gives the English invoices and Malaysian-style receipts this
module always gave, byte for byte; "nl" "de" "fr" "es" "it" give documents of companies in
countries speaking them, with their labels, number and date formats (languages.py, locales.py).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from pathlib import Path

from cropvlm.box import Box
from cropvlm.synthetic import scan
from cropvlm.synthetic.languages import LANGUAGES
from cropvlm.synthetic.layouts import draw_invoice, draw_receipt
from cropvlm.synthetic.pdf import build_document, pdf_bytes
from cropvlm.templates import load_template

KINDS = ("invoice", "receipt")
FORMATS = ("pdf", "png", "jpeg", "tiff")
SUFFIXES = {"pdf": ".pdf", "png": ".png", "jpeg": ".jpg", "tiff": ".tiff"}
MULTI_PAGE_FORMATS = ("pdf", "tiff")
TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates"


@dataclass(frozen=True)
class GoldField:
    field: str
    question: str
    answer: str  # printed value text, see the module docstring
    page_number: int  # 1-based
    box: Box  # percent of that page / image


@dataclass(frozen=True)
class SyntheticDocument:
    name: str
    kind: str
    format: str
    data: bytes
    suffix: str  # ".pdf", ".png", ".jpg", ".tiff"
    pages: int
    gold: tuple[GoldField, ...]
    language: str = "en"


@functools.lru_cache(maxsize=None)
def questions(kind: str) -> tuple[tuple[str, str], ...]:
    """(field, question) pairs in template order, read from templates/<kind>.yaml."""
    template = load_template(TEMPLATE_DIR / f"{kind}.yaml")
    return tuple((spec.field, spec.question) for spec in template.fields)


def generate_document(kind: str, seed: int, format: str = "pdf", dpi: int = 150,
                      language: str = "en") -> SyntheticDocument:
    """Deterministic: the same (kind, seed, format, dpi, language) gives byte-identical `data`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
    # String seeds hash stably (sha512), unlike hash(); English keeps its original seed strings.
    key = f"{kind}:{seed}" if language == "en" else f"{kind}:{language}:{seed}"
    rng = random.Random(key)
    sheet = draw_invoice(rng, format in MULTI_PAGE_FORMATS, language) if kind == "invoice" \
        else draw_receipt(rng, language)
    doc = build_document(sheet)
    if len(doc) > 1 and format not in MULTI_PAGE_FORMATS:
        raise AssertionError(f"{kind} seed {seed}: {len(doc)} pages cannot be stored as {format}")
    marks = {m.field: m for m in sheet.marks}
    if format == "pdf":
        data = pdf_bytes(doc)
        boxes = {f: Box.from_pixels(*m.rect, sheet.width, sheet.height) for f, m in marks.items()}
    else:
        images, boxes = [], {}
        scan_rng = random.Random(f"scan:{key}:{format}")  # degradation apart from content
        for index, page in enumerate(doc):
            img, scale = scan.render(page, dpi)
            img, geo = scan.degrade(img, scan_rng)
            if format != "jpeg" and scan_rng.random() < 0.4:
                img = scan.jpeg_roundtrip(img, scan_rng.randint(50, 90))
            images.append(img)
            for f, m in marks.items():
                if m.page == index:
                    boxes[f] = scan.rect_to_box(m.rect, scale, geo)
        data = scan.encode(images, format, scan_rng)
    gold = tuple(GoldField(f, q, marks[f].answer, marks[f].page + 1, boxes[f]) for f, q in questions(kind))
    doc.close()
    name = f"{kind}_{seed}" if language == "en" else f"{kind}_{language}_{seed}"
    return SyntheticDocument(name, kind, format, data, SUFFIXES[format], len(sheet.pages), gold, language)
