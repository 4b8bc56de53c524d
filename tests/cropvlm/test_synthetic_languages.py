"""Synthetic documents in six languages: English unchanged, the others rendered with their gold."""

from __future__ import annotations

import hashlib
import io
import json
import re

import pymupdf
import pytest
from PIL import Image

from cropvlm.synthetic import LANGUAGES, generate_document, write_dataset
from cropvlm.synthetic.document import questions
from cropvlm.synthetic.languages import INVOICE, RECEIPT

OTHERS = LANGUAGES[1:]
KINDS = ("invoice", "receipt")


def _norm(text: str) -> str:
    return " ".join(text.split())


def _digest(kind: str, fmt: str, seeds: tuple[int, ...], dpi: int, **language) -> str:
    h = hashlib.sha256()
    for seed in seeds:
        doc = generate_document(kind, seed, fmt, dpi, **language)
        h.update(doc.data)
        h.update(repr(doc.gold).encode())
    return h.hexdigest()[:16]


# Computed with the generator before languages existed; a PyMuPDF, Pillow or numpy upgrade that
# changes bytes changes these too (then re-pin from the English-only generator's output).
_PINNED = [("invoice", "pdf", tuple(range(12)), 150, "c4f7ed6269f71b41"),
           ("receipt", "pdf", tuple(range(12)), 150, "ecdf788e82f92e63"),
           ("invoice", "tiff", (11,), 50, "8241d261458a8ba4"), ("invoice", "png", (3,), 50, "d932bb04e864f2a9"),
           ("receipt", "jpeg", (3,), 50, "553ddd27aff2862f"), ("receipt", "png", (4,), 50, "5f4f6bfa39c20fb8")]


@pytest.mark.parametrize("kind,fmt,seeds,dpi,expected", _PINNED)
def test_english_documents_are_byte_identical_to_before_languages(kind, fmt, seeds, dpi, expected):
    assert _digest(kind, fmt, seeds, dpi) == expected
    assert _digest(kind, fmt, seeds[:2], dpi, language="en") == _digest(kind, fmt, seeds[:2], dpi)


def test_default_dataset_is_byte_identical_to_before_languages(tmp_path):
    write_dataset(tmp_path, 8, seed=3, dpi=50)
    h = hashlib.sha256()
    for path in sorted(tmp_path.iterdir()):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    assert h.hexdigest()[:16] == "5b8d3201a6da8909"


def test_language_tables_have_the_same_keys_and_print_in_the_pdf_encoding():
    for tables in (INVOICE, RECEIPT):
        assert set(tables) == set(LANGUAGES)
        for language, table in tables.items():
            assert set(table) == set(tables["en"]), language
            for options in table.values():
                assert options and all(isinstance(o, str) for o in options)
                "".join(options).encode("cp1252")  # base-14 fonts print Windows-1252 only


@pytest.mark.parametrize("language", OTHERS)
@pytest.mark.parametrize("kind", KINDS)
def test_gold_is_printed_inside_its_box_in_every_language(kind, language):
    expected = list(questions(kind))
    for seed in range(12):
        doc = generate_document(kind, seed, language=language)
        assert doc.language == language and doc.name == f"{kind}_{language}_{seed}"
        assert [(g.field, g.question) for g in doc.gold] == expected
        pdf = pymupdf.open(stream=doc.data, filetype="pdf")
        assert len(pdf) == doc.pages
        for g in doc.gold:
            assert g.answer and g.answer.strip() == g.answer and 1 <= g.page_number <= doc.pages
            assert 0 <= g.box.x1 < g.box.x2 <= 100 and 0 <= g.box.y1 < g.box.y2 <= 100
            page = pdf[g.page_number - 1]
            assert _norm(g.answer) in _norm(page.get_text()), (language, seed, g.field)
            w, h = page.rect.width, page.rect.height
            clip = pymupdf.Rect(g.box.x1 * w / 100, g.box.y1 * h / 100, g.box.x2 * w / 100, g.box.y2 * h / 100)
            found = _norm(page.get_text("text", clip=clip))
            assert _norm(g.answer) in found, (language, seed, g.field, g.answer, found)
            assert len(found) <= len(_norm(g.answer)) + 12, (language, seed, g.field, found)


@pytest.mark.parametrize("language", OTHERS)
def test_documents_print_their_language_labels_and_formats(language):
    totals = {"invoice": INVOICE[language]["total"], "receipt": RECEIPT[language]["total"]}
    for kind in KINDS:
        for seed in range(6):
            doc = generate_document(kind, seed, language=language)
            pdf = pymupdf.open(stream=doc.data, filetype="pdf")
            text = _norm(" ".join(page.get_text() for page in pdf)).lower()
            assert any(label.lower() in text for label in totals[kind]), (kind, seed)
            gold = {g.field: g.answer for g in doc.gold}
            amount = gold["total_amount" if kind == "invoice" else "total"]
            assert re.fullmatch(r"\d{1,3}(?:[.' ]?\d{3})*[.,]\d{2}", amount), amount
            assert re.search(r"\d{4}|\d{2}$", gold["invoice_date" if kind == "invoice" else "date"])


def test_euro_sign_and_accents_reach_the_text_layer():
    text = ""
    for seed in range(10):
        for language in ("fr", "de"):
            pdf = pymupdf.open(stream=generate_document("invoice", seed, language=language).data, filetype="pdf")
            text += " ".join(page.get_text() for page in pdf)
    assert "€" in text and "·" not in text.replace(" · ", " ")  # "·" alone is PyMuPDF's unknown glyph
    assert "é" in text and ("ä" in text or "ü" in text)


def test_vendor_is_sometimes_only_in_the_footer_and_never_the_title():
    titles = {t.lower() for table in INVOICE.values() for t in table["title"]}
    vendors = [next(g for g in generate_document("invoice", seed, language=language).gold if g.field == "vendor")
               for language in OTHERS for seed in range(8)]
    assert all(v.answer.lower() not in titles for v in vendors)
    assert any(v.box.y1 > 85 for v in vendors)  # the legal line at the foot of the page
    assert sum(v.box.y1 < 20 for v in vendors) > len(vendors) / 2  # mostly a letterhead


@pytest.mark.parametrize("fmt", ["png", "tiff"])
def test_raster_documents_in_other_languages(fmt):
    for i, language in enumerate(OTHERS):
        doc = generate_document(KINDS[i % 2], i, fmt, dpi=50, language=language)
        img = Image.open(io.BytesIO(doc.data))
        assert img.format == fmt.upper() and getattr(img, "n_frames", 1) == doc.pages
        assert all(0 <= g.box.x1 < g.box.x2 <= 100 and 0 <= g.box.y1 < g.box.y2 <= 100 for g in doc.gold)


def test_write_dataset_with_languages(tmp_path):
    docs = write_dataset(tmp_path, 12, seed=3, formats=("pdf", "png"), dpi=50, languages=LANGUAGES)
    assert [d.language for d in docs] == [language for language in LANGUAGES for _ in KINDS]
    assert [d.name for d in docs][:4] == ["invoice_0000", "receipt_0001", "invoice_nl_0002", "receipt_nl_0003"]
    default = write_dataset(tmp_path / "en", 2, seed=3, formats=("pdf", "png"), dpi=50)
    assert [d.data for d in docs[:2]] == [d.data for d in default]
    rows = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 48
    for row in rows[8:12]:  # a Dutch invoice's source says how to regenerate it
        kind, language, seed = re.fullmatch(r"synthetic:(\w+):(\w\w):seed=(\d+)", row["source"]).groups()
        assert (tmp_path / row["doc"]).read_bytes() == generate_document(kind, int(seed), "pdf", 50, language).data


def test_unknown_language_is_rejected(tmp_path):
    with pytest.raises(ValueError):
        generate_document("invoice", 0, language="pt")
    with pytest.raises(ValueError):
        write_dataset(tmp_path, 1, languages=("en", "pt"))
