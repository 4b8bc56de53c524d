from pathlib import Path

import pytest

from cropvlm.errors import TemplateError
from cropvlm.templates import load_template_set

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_templates_load_with_their_types():
    templates = load_template_set([REPO / "templates/receipt.yaml", REPO / "templates/invoice.yaml"])
    types = {f.field: f.type for f in templates.fields}
    assert types == {"company": "text", "date": "date", "address": "text", "total": "amount",
                     "invoice_number": "id", "invoice_date": "date", "total_amount": "amount", "vendor": "text"}
    assert len(templates.content_hash) == 64


def test_content_hash_changes_with_the_content_not_the_formatting(tmp_path):
    a = write(tmp_path, "a.yaml", "name: t\nversion: 1\nfields:\n  - {field: x, question: 'What is X?'}\n")
    b = write(tmp_path, "b.yaml", "# comment\nname: t\nversion: 1\nfields:\n- field: x\n  question: What is X?\n")
    c = write(tmp_path, "c.yaml", "name: t\nversion: 1\nfields:\n  - {field: x, question: 'What is the X?'}\n")
    assert load_template_set([a]).content_hash == load_template_set([b]).content_hash
    assert load_template_set([a]).content_hash != load_template_set([c]).content_hash


@pytest.mark.parametrize(
    "body, message",
    [
        ("name: t\nversion: 1\nfields: []\n", "'fields' must be a non-empty list"),
        ("name: t\nversion: 0\nfields:\n  - {field: x, question: q}\n", "'version' must be a positive integer"),
        ("name: t\nversion: 1\nfields:\n  - {field: x, question: q, type: money}\n", "field 'x': 'type' must be one of"),
        ("name: t\nversion: 1\nfields:\n  - {field: Bad Name, question: q}\n", "fields[0]: 'field' must be lower snake case"),
        ("name: t\nversion: 1\nfields:\n  - {field: x}\n", "field 'x': 'question' must be a non-empty string"),
        ("name: t\nversion: 1\nfields:\n  - {field: x, question: q, alias: [A]}\n", "field 'x': unknown keys ['alias']"),
        ("name: t\nversion: 1\nfields:\n  - {field: x, question: q}\n  - {field: x, question: r}\n", "field 'x' is defined more than once"),
        ("name: t\nversion: 1\nfields: [\n", "not valid YAML"),
        ("name: t\nversion: 1\nfields:\n  - {field: x, question: q, review_below: 2}\n", "'review_below' must be a confidence"),
    ],
)
def test_errors_name_the_file_the_field_and_the_problem(tmp_path, body, message):
    path = write(tmp_path, "bad.yaml", body)
    with pytest.raises(TemplateError) as error:
        load_template_set([path])
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_a_field_defined_in_two_files_is_an_error(tmp_path):
    a = write(tmp_path, "a.yaml", "name: a\nversion: 1\nfields:\n  - {field: x, question: q}\n")
    b = write(tmp_path, "b.yaml", "name: b\nversion: 1\nfields:\n  - {field: x, question: q}\n")
    with pytest.raises(TemplateError, match="already defined"):
        load_template_set([a, b])


def test_missing_file_is_a_template_error(tmp_path):
    with pytest.raises(TemplateError, match="cannot read"):
        load_template_set([tmp_path / "nope.yaml"])
