"""cropvlm.labels: loading and validating a folder's labels.jsonl against templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from cropvlm.box import Box
from cropvlm.errors import LabelError
from cropvlm.labels import infer_type, load_labels
from cropvlm.templates import load_template_set
from tests.cropvlm.label_helpers import label, write_labels

REPO = Path(__file__).resolve().parents[2]
RECEIPT = REPO / "templates/receipt.yaml"
SROIE = REPO.parent / "shared/data/sroie_dev"


# --- labels ----------------------------------------------------------------------------------

@pytest.mark.parametrize("question, expected", [
    ("What is the date of this receipt?", "date"),
    ("What is the total amount paid?", "amount"),
    ("What is the total amount due?", "amount"),
    ("What is the invoice number?", "id"),
    ("What is the name of the company that issued this receipt?", "text"),
    ("What is the address of the company?", "text"),
])
def test_types_are_inferred_from_the_question(question, expected):
    assert infer_type(question) == expected


def test_labels_load_with_pages_boxes_limit_and_inferred_types(tmp_path):
    folder = write_labels(tmp_path / "set", [
        label("a.png", page=1, box=[10, 20, 30, 25]),
        label("a.png", "date", "What is the date of this receipt?", "19/10/2018"),
        label("b.png", "company", "Who issued it?", "ACME"),
        label("c.png"),
    ], docs=("a.png", "b.png", "c.png"))
    labels = load_labels(folder)
    assert labels.documents == ("a.png", "b.png", "c.png") and len(labels.labels) == 4
    assert labels.labels[0].page == 1 and labels.labels[0].box == Box(10, 20, 30, 25) and labels.has_boxes
    assert {f: s.type for f, s in labels.fields.items()} == {"total": "amount", "date": "date", "company": "text"}

    limited = load_labels(folder, limit=2)
    assert limited.documents == ("a.png", "b.png") and len(limited.labels) == 3


def test_templates_give_types_and_aliases_by_field_name(tmp_path):
    folder = write_labels(tmp_path / "set", [label(field="total", question="How much?"),
                                             label(field="company", question="What is the total of the company?")],
                          docs=("a.png",))
    fields = load_labels(folder, load_template_set([RECEIPT])).fields
    assert fields["total"].type == "amount" and "GRAND TOTAL" in fields["total"].aliases
    assert fields["total"].question == "How much?"  # the labels' question is asked
    assert fields["company"].type == "text"  # by name, not by the question's words


def test_the_question_is_optional_where_the_templates_give_it(tmp_path):
    folder = write_labels(tmp_path / "set", [{"doc": "a.png", "field": "date", "answer": "19/10/2018"}],
                          docs=("a.png",))
    templates = load_template_set([RECEIPT])
    template_question = next(spec.question for spec in templates.fields if spec.field == "date")
    assert load_labels(folder, templates).fields["date"].question == template_question
    with pytest.raises(LabelError, match=r"labels.jsonl:1: 'question' must be a non-empty string"):
        load_labels(folder)  # no templates: the labels must ask


@pytest.mark.parametrize("lines, docs, message", [
    ([], ("a.png",), "empty labels file"),
    (["", "  "], ("a.png",), "empty labels file"),
    ([label("missing.png")], (), "document file .*missing.png does not exist"),
    (["{not json"], (), r"labels.jsonl:1: not valid JSON"),
    ([label(), {"doc": "a.png", "field": "x"}], ("a.png",), r"labels.jsonl:2: 'question' must be a non-empty string"),
    ([label(type="money")], ("a.png",), "unknown field type 'money' for field 'total'"),
    ([label(box=[50, 10, 20, 30])], ("a.png",), r"bad 'box'.*x2 > x1"),
    ([label(page=0)], ("a.png",), "'page' must be an integer from 1 to"),
    ([label(), label()], ("a.png",), "has field 'total' twice"),
    ([label("../a.png")], (), "must be a file name inside the folder"),
])
def test_bad_labels_fail_with_file_line_and_problem(tmp_path, lines, docs, message):
    folder = write_labels(tmp_path / "set", lines, docs)
    with pytest.raises(LabelError, match=message):
        load_labels(folder)


def test_a_field_missing_from_the_templates_has_no_type(tmp_path):
    folder = write_labels(tmp_path / "set", [label(field="tip", question="What is the tip?")], docs=("a.png",))
    with pytest.raises(LabelError, match="field 'tip' has no answer type: it is not in the templates receipt@v1"):
        load_labels(folder, load_template_set([RECEIPT]))


def test_a_folder_without_labels_says_so(tmp_path):
    (tmp_path / "set").mkdir()
    with pytest.raises(LabelError, match="no labels file"):
        load_labels(tmp_path / "set")
    with pytest.raises(LabelError, match="not a folder"):
        load_labels(tmp_path / "nowhere")


@pytest.mark.skipif(not SROIE.is_dir(), reason="shared/data/sroie_dev not present")
def test_sroie_dev_labels_validate_against_the_receipt_template():
    labels = load_labels(SROIE, load_template_set([RECEIPT]), limit=5)
    assert len(labels.documents) == 5 and len(labels.labels) == 20 and not labels.has_boxes
    assert {f: s.type for f, s in labels.fields.items()} == {
        "company": "text", "date": "date", "address": "text", "total": "amount"}
