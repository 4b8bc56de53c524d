"""Answer grounding: reviewed answers (no boxes) get SFT boxes located by reading the page."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cropvlm.labels import field_specs, load_labels
from cropvlm.readers.ocr_lines import OcrLine
from cropvlm.render import RenderConfig
from cropvlm.training.examples import build_examples
from cropvlm.training.grounding import ground_answers, locate


def line(text: str, x1: float, y1: float, x2: float | None = None, height: float = 10) -> OcrLine:
    return OcrLine(text, 0.9, (x1, y1, x2 if x2 is not None else x1 + 8 * len(text), y1 + height))


RECEIPT = [
    line("ACME TRADING SDN BHD", 10, 0),
    line("NO 12, JALAN MAJU 3,", 10, 14),
    line("81100 JOHOR BAHRU", 10, 28),
    line("Date: 12 MAR 2018", 10, 60),
    line("Bread", 10, 100), line("4.50", 200, 100),
    line("SUBTOTAL", 10, 120), line("60.30", 200, 120),
    line("TOTAL", 10, 134), line("RM60.30", 200, 134),
    line("CASH", 10, 400), line("60.30", 200, 400),
]


def test_dates_and_amounts_match_by_value_whatever_their_print():
    assert locate(RECEIPT, "12/03/2018", "date") == RECEIPT[3].box
    # 60.30 is printed three times; the TOTAL row is the labelled one
    assert locate(RECEIPT, "60.30", "amount", ["total", "amount"], page_height=1000) == RECEIPT[9].box


def test_text_spanning_lines_gets_the_union_of_its_lines():
    box = locate(RECEIPT, "NO 12, JALAN MAJU 3, 81100 JOHOR BAHRU", "text")
    assert box == (10, 14, max(RECEIPT[1].box[2], RECEIPT[2].box[2]), 38)
    # OCR noise within the similarity threshold still grounds; beyond it, nothing is found
    noisy = [line("ACME TRAD1NG SDN BHO", 10, 0)]
    assert locate(noisy, "ACME TRADING SDN BHD", "text") == noisy[0].box
    assert locate(noisy, "TOTALLY DIFFERENT SHOP", "text") is None


def test_a_value_printed_far_apart_without_one_label_is_ambiguous():
    # no label matches "payment": the three 60.30 are spread over 28 % of a 1000 px page
    assert locate(RECEIPT, "60.30", "amount", ["payment"], page_height=1000) == "ambiguous"
    # close together (SUBTOTAL and TOTAL rows only) they share a box
    close = RECEIPT[:10]
    assert locate(close, "60.30", "amount", ["payment"], page_height=1000) == (200, 120, 256, 144)


def test_unparsable_gold_values_fall_back_to_text_and_missing_ones_are_not_found():
    assert locate(RECEIPT, "Bread", "amount") == RECEIPT[4].box  # not an amount: found as text
    assert locate(RECEIPT, "4.50", "amount") == RECEIPT[5].box
    assert locate(RECEIPT, "99.99", "amount") is None
    assert locate(RECEIPT, "zz/zz", "date") is None  # neither a date nor printed


@pytest.mark.slow
def test_grounding_a_rendered_document_with_real_ocr_finds_its_gold_boxes(tmp_path):
    """Synthetic documents know where their values are: strip the boxes, ground the answers
    with RapidOCR, and the boxes found must overlap the printed values."""
    from cropvlm.readers.ocr_engines import make_engine
    from cropvlm.synthetic.dataset import write_dataset

    write_dataset(tmp_path, 2, seed=7)
    label_set = load_labels(tmp_path)
    labels = [dataclasses.replace(label, doc=str(tmp_path / label.doc), type=label_set.fields[label.field].type)
              for label in label_set.labels]
    gold = {(label.doc, label.field): label.box for label in labels}
    unboxed = [dataclasses.replace(label, box=None) for label in labels]
    examples = build_examples(unboxed, field_specs(unboxed), lambda p: Path(p).read_bytes(), RenderConfig(dpi=150))

    grounded, report = ground_answers(examples, make_engine("rapidocr"))

    assert report.as_dict()["grounded"] + report.as_dict()["ambiguous"] + report.as_dict()["not_found"] == len(labels)
    boxed = [e for e in grounded.examples if e.gold_box is not None]
    assert len(boxed) >= 0.75 * len(labels), report.as_dict()
    for example in boxed:  # covers the printed value, without swallowing the page
        truth, found = gold[(example.doc, example.spec.field)], example.gold_box
        width = min(truth.x2, found.x2) - max(truth.x1, found.x1)
        height = min(truth.y2, found.y2) - max(truth.y1, found.y1)
        covered = max(width, 0) * max(height, 0) / 10_000 / truth.area  # area is a page fraction
        assert covered > 0.6 and found.area < 10 * truth.area + 0.005, (example.spec.field, found, truth)
    assert all(e.gold_box is None for e in examples.examples)  # the input set is left as it was
