"""Synthetic invoices/receipts: determinism, gold completeness, and gold boxes on the text."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pymupdf
import pytest
from PIL import Image

from cropvlm.synthetic import GoldField, SyntheticDocument, generate_document, write_dataset
from cropvlm.synthetic.document import TEMPLATE_DIR
from cropvlm.synthetic.scan import Affine
from cropvlm.templates import load_template

KINDS = ("invoice", "receipt")


def _norm(text: str) -> str:
    return " ".join(text.split())


def _first_multi_page_seed() -> int:
    return next(s for s in range(200) if generate_document("invoice", s, "pdf").pages > 1)


@pytest.mark.parametrize("kind,fmt", [("invoice", "pdf"), ("receipt", "pdf"), ("receipt", "png"),
                                      ("invoice", "jpeg"), ("receipt", "tiff")])
def test_same_seed_same_bytes_and_different_seed_differs(kind, fmt):
    a, b = generate_document(kind, 7, fmt, dpi=72), generate_document(kind, 7, fmt, dpi=72)
    assert a.data == b.data and a.gold == b.gold
    assert generate_document(kind, 8, fmt, dpi=72).data != a.data


@pytest.mark.parametrize("kind", KINDS)
def test_every_template_field_has_a_gold_answer(kind):
    template = load_template(TEMPLATE_DIR / f"{kind}.yaml")
    expected = [(s.field, s.question) for s in template.fields]
    for seed in range(15):
        doc = generate_document(kind, seed)
        assert isinstance(doc, SyntheticDocument) and doc.suffix == ".pdf" and doc.kind == kind
        assert [(g.field, g.question) for g in doc.gold] == expected
        for g in doc.gold:
            assert isinstance(g, GoldField) and g.answer.strip() == g.answer and g.answer
            assert 1 <= g.page_number <= doc.pages
            assert 0 <= g.box.x1 < g.box.x2 <= 100 and 0 <= g.box.y1 < g.box.y2 <= 100


@pytest.mark.parametrize("kind", KINDS)
def test_pdf_text_inside_gold_box_contains_answer(kind):
    for seed in range(25):
        doc = generate_document(kind, seed)
        pdf = pymupdf.open(stream=doc.data, filetype="pdf")
        assert len(pdf) == doc.pages
        for g in doc.gold:
            page = pdf[g.page_number - 1]
            w, h = page.rect.width, page.rect.height
            clip = pymupdf.Rect(g.box.x1 * w / 100, g.box.y1 * h / 100, g.box.x2 * w / 100, g.box.y2 * h / 100)
            found = _norm(page.get_text("text", clip=clip))
            assert _norm(g.answer) in found, (kind, seed, g.field, g.answer, found)
            # The box is tight: it holds the value, not the whole line with its label.
            assert len(found) <= len(_norm(g.answer)) + 12, (kind, seed, g.field, found)


def test_amount_answers_carry_no_currency_and_receipts_are_narrow():
    for seed in range(15):
        doc = generate_document("receipt", seed)
        total = next(g for g in doc.gold if g.field == "total")
        assert re.fullmatch(r"\d[\d,.]*\d", total.answer), total.answer
        page = pymupdf.open(stream=doc.data, filetype="pdf")[0]
        assert page.rect.width < 120 * 72 / 25.4 and doc.pages == 1


def test_multi_page_invoice_as_tiff_and_single_page_for_png_jpeg():
    seed = _first_multi_page_seed()
    pdf = generate_document("invoice", seed, "pdf")
    gold = {g.field: g for g in pdf.gold}
    assert gold["invoice_number"].page_number == 1 and gold["vendor"].page_number == 1
    assert gold["total_amount"].page_number == pdf.pages
    tiff = generate_document("invoice", seed, "tiff", dpi=50)
    img = Image.open(io.BytesIO(tiff.data))
    assert tiff.suffix == ".tiff" and tiff.pages == pdf.pages == img.n_frames
    assert {g.field: g.page_number for g in tiff.gold} == {f: g.page_number for f, g in gold.items()}
    for fmt in ("png", "jpeg"):
        single = generate_document("invoice", seed, fmt, dpi=50)
        assert single.pages == 1 and all(g.page_number == 1 for g in single.gold)
        assert Image.open(io.BytesIO(single.data)).format == fmt.upper()


def test_raster_gold_boxes_follow_the_page_through_degradation():
    """Receipt content is format-independent: raster boxes sit where the PDF boxes are, on ink."""
    for seed in range(4):
        pdf = {g.field: g.box for g in generate_document("receipt", seed, "pdf").gold}
        png = generate_document("receipt", seed, "png", dpi=100)
        img = np.asarray(Image.open(io.BytesIO(png.data)).convert("L"))
        for g in png.gold:
            (cx, cy), (px, py) = g.box.center, pdf[g.field].center
            assert abs(cx - px) < 3 and abs(cy - py) < 3, (seed, g.field)
            left, top, right, bottom = g.box.to_pixels(img.shape[1], img.shape[0])
            assert (img[top:bottom, left:right] < 140).mean() > 0.01, (seed, g.field)


def test_affine_inverse_matches_forward_map():
    geo = Affine(400, 600, 1.3, 0.008)
    a, b, c, d, e, f = geo.pil_data()
    for x, y in ((0, 0), (400, 0), (123, 456)):
        ox, oy = geo.apply(x, y)
        assert a * ox + b * oy + c == pytest.approx(x) and d * ox + e * oy + f == pytest.approx(y)


def test_bad_kind_or_format_is_rejected():
    with pytest.raises(ValueError):
        generate_document("letter", 0)
    with pytest.raises(ValueError):
        generate_document("invoice", 0, "gif")


def test_write_dataset_files_and_labels(tmp_path):
    docs = write_dataset(tmp_path, 8, seed=3, dpi=50)
    assert [d.name for d in docs][:2] == ["invoice_0000", "receipt_0001"]
    assert {(d.kind, d.format) for d in docs} == {(k, f) for k in KINDS for f in ("pdf", "png", "jpeg", "tiff")}
    for d in docs:
        assert (tmp_path / f"{d.name}{d.suffix}").read_bytes() == d.data
    rows = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert len(rows) == sum(len(d.gold) for d in docs) == 32
    for row in rows:
        assert set(row) == {"doc", "field", "question", "answer", "source", "page", "box"}
        assert (tmp_path / row["doc"]).exists() and row["answer"] and row["page"] >= 1
        assert re.fullmatch(r"synthetic:(invoice|receipt):seed=\d+", row["source"])
        assert len(row["box"]) == 4 and all(round(v, 2) == v for v in row["box"])
    again = write_dataset(tmp_path / "again", 8, seed=3, dpi=50)
    assert [d.data for d in again] == [d.data for d in docs]
