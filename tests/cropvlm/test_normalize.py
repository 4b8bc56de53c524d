"""Normalisation and metrics shared by the readers and the evaluation."""

from __future__ import annotations

import pytest

from cropvlm.normalize import (
    anls,
    exact_match,
    find_dates,
    normalize_text,
    normalize_value,
    parse_amount,
)

# Every printed date format found in data/sroie_dev/labels.jsonl, plus common others.
DATES = [
    ("19/10/2018", "2018-10-19"),  # dd/mm/yyyy
    ("5/3/2018", "2018-03-05"),  # d/m/yyyy, day first
    ("21/02/18", "2018-02-21"),  # dd/mm/yy
    ("24-01-18", "2018-01-24"),  # dd-mm-yy
    ("24-03-2018", "2018-03-24"),  # dd-mm-yyyy
    ("11.02.18", "2018-02-11"),  # dd.mm.yy
    ("19.10.2018", "2018-10-19"),  # dd.mm.yyyy
    ("2016/05/01", "2016-05-01"),  # yyyy/mm/dd
    ("2018-10-19", "2018-10-19"),  # ISO
    ("20180304", "2018-03-04"),  # yyyymmdd
    ("18 MAR 2018", "2018-03-18"),  # dd Mon yyyy
    ("19 Oct 2018", "2018-10-19"),
    ("24-MAR-2018", "2018-03-24"),  # dd-Mon-yyyy
    ("05-AUG-2017", "2017-08-05"),
    ("14/MAY/2017", "2017-05-14"),  # dd/Mon/yyyy
    ("OCT 3, 2016", "2016-10-03"),  # Mon d, yyyy
    ("Oct 19, 2018", "2018-10-19"),
    ("October 19, 2018", "2018-10-19"),
    ("19th October 2018", "2018-10-19"),
    ("10 JUN 18", "2018-06-10"),  # 2-digit year -> 20xx
    ("12/31/2018", "2018-12-31"),  # month first only when day-first is impossible
]


@pytest.mark.parametrize("text, iso", DATES)
def test_date_formats(text: str, iso: str) -> None:
    assert normalize_value(text, "date") == iso


def test_every_date_format_in_sroie_dev_labels_parses() -> None:
    import json
    from pathlib import Path

    labels = Path(__file__).resolve().parents[3] / "shared/data/sroie_dev/labels.jsonl"
    if not labels.exists():
        pytest.skip("shared sroie_dev data not present")
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    dates = [r["answer"] for r in rows if r["field"] == "date"]
    assert dates and all(normalize_value(d, "date") for d in dates)
    amounts = [r["answer"] for r in rows if r["field"] == "total"]
    assert all(normalize_value(a, "amount") for a in amounts)


@pytest.mark.parametrize(
    "text, iso",
    [
        ("Date: 19/10/2018 20:49", "2018-10-19"),
        ("19/10/201820:49:59#01", "2018-10-19"),  # OCR glued the time to the year
        ("Order 12 on 01-NOV-2017", "2017-11-01"),
    ],
)
def test_date_inside_text(text: str, iso: str) -> None:
    assert normalize_value(text, "date") == iso


@pytest.mark.parametrize("text", ["", "hello", "31/02/2018", "99/99/99", "12345678", "19/13/2018x"])
def test_unparsable_dates_are_none(text: str) -> None:
    assert normalize_value(text, "date") is None


def test_ambiguous_day_month_is_day_first() -> None:
    assert normalize_value("03/04/2018", "date") == "2018-04-03"


def test_find_dates_in_reading_order() -> None:
    found = find_dates("from 2018-01-02 to 5 Mar 2018")
    assert [iso for iso, _ in found] == ["2018-01-02", "2018-03-05"]


@pytest.mark.parametrize(
    "text, value",
    [
        ("RM 1,234.5", "1234.50"),
        ("1.234,50", "1234.50"),
        ("60.30", "60.30"),
        ("RM60.30", "60.30"),
        ("$8.20", "8.20"),
        ("RM 15.40", "15.40"),
        ("TOTAL: 60.30", "60.30"),
        ("7", "7.00"),
        ("12,5", "12.50"),
        ("1,234", "1234.00"),
        ("1,234,567.891", "1234567.89"),
        ("1.234.567", "1234567.00"),
        ("-5.00", "-5.00"),
        ("60.30RM", "60.30"),
        ("EUR 99,99", "99.99"),
    ],
)
def test_amounts(text: str, value: str) -> None:
    assert normalize_value(text, "amount") == value


@pytest.mark.parametrize("text", ["", "TOTAL", "N/A", "INV2041"])
def test_unparsable_amounts_are_none(text: str) -> None:
    assert normalize_value(text, "amount") is None


def test_parse_amount_takes_the_value_after_the_label() -> None:
    assert str(parse_amount("Total Qty 2 TOTAL 60.30")) == "60.30"


def test_ids_upper_case_without_spaces() -> None:
    assert normalize_value(" inv - 2041 ", "id") == "INV-2041"
    assert normalize_value("#A 12 b.", "id") == "A12B"
    assert normalize_value("", "id") is None


def test_text() -> None:
    assert normalize_value("  Indah Gift &  Home-Deco. ", "text") == "INDAH GIFT HOME DECO"
    assert normalize_text("NO.53") == normalize_text("No. 53") == "NO 53"
    assert normalize_text("McDonald's") == "MCDONALDS"
    assert normalize_text(None) == ""


def test_exact_match_by_type() -> None:
    assert exact_match("TOTAL RM 60.3", "60.30", "amount")
    assert exact_match("1,234.50", "1234.5", "amount")
    assert not exact_match("60.31", "60.30", "amount")
    assert exact_match("2018-10-19", "19/10/2018", "date")
    assert exact_match("19 Oct 2018", "19-10-18", "date")
    assert not exact_match("", "19/10/2018", "date")
    assert exact_match("inv 2041", "INV2041", "id")
    assert exact_match("Soon Huat, Machinery", "SOON HUAT MACHINERY", "text")
    assert not exact_match("SOON HUAT", "SOON HUAT MACHINERY", "text")


def test_exact_match_with_unparsable_gold_compares_text() -> None:
    assert exact_match("n/a", "N/A", "amount")
    assert not exact_match("", "", "amount")


def test_anls() -> None:
    assert anls("INDAH GIFT", "indah gift") == 1.0
    assert anls("", "") == 1.0
    assert anls("", "abc") == 0.0
    assert anls("ABCD", "ABCE") == pytest.approx(0.75)
    assert anls("ABCD", "WXYZ") == 0.0  # distance over the 0.5 threshold
    assert anls("AB", "ABCD") == 0.0  # exactly 0.5 is cut too
    assert anls("ABCD", ["WXYZ", "ABCD"]) == 1.0  # best over several golds


def test_date_spans_cover_the_printed_date_and_split_glued_times() -> None:
    from cropvlm.normalize import find_date_spans

    cases = {
        "DATE August 14, 2019 x": ("2019-08-14", "August 14, 2019"),
        "Date/Time:20/02/1711:44:25": ("2017-02-20", "20/02/17"),
        "TARIKH:2020-12-041:49PM": ("2020-12-04", "2020-12-04"),
        "9May202010:30": ("2020-05-09", "9May2020"),
        "19/10/201820:49:59": ("2018-10-19", "19/10/2018"),
    }
    for text, (iso, printed) in cases.items():
        (found, start, end), *_ = find_date_spans(text)
        assert (found, text[start:end]) == (iso, printed), text
    assert [iso for iso, _, _ in find_date_spans("19/10/201820:49 and 01/02/202012:00")] == ["2018-10-19", "2020-02-01"]
