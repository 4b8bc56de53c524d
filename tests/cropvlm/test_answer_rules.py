"""The OCR reader's answer rules and line layout on OCR lines built in code (no OCR):
which line answers a field, column segments, label -> value layouts, headers."""

from __future__ import annotations

from cropvlm.readers.answer_rules import extract
from cropvlm.readers.answer_text import _looks_printed_name
from cropvlm.readers.ocr_lines import OcrLine, merge_into_lines, segment_lines, split_row
from cropvlm.templates import FieldSpec
from tests.cropvlm.ocr_helpers import (ADDRESS, COMPANY, DATE, INVOICE, INVOICE_DATE, INVOICE_NO, TOTAL, TOTAL_DUE,
                                       VENDOR, lines_of, piece, two_column_header)


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


def test_a_header_line_without_latin_words_is_not_a_crash():
    # RapidOCR reads Chinese shop names on Malaysian receipts: letters, but no A-Z words.
    assert _looks_printed_name(OcrLine("海洋百货公司", 0.9, (0, 0, 100, 20)), min_height=10) is False


def test_free_text_answers_get_spaces_between_glued_numbers_and_words_ids_do_not():
    crop = lines_of("NO.205,JALAN PUTRA13,", "50450KUALA LUMPUR")
    assert extract(crop, ADDRESS, "crop").text == "NO.205,JALAN PUTRA 13, 50450 KUALA LUMPUR"
    assert extract(lines_of("Invoice No: INV1182161"), INVOICE).text == "INV1182161"
