"""Restoring the spaces a CTC recogniser drops, from its character positions."""

from __future__ import annotations

from cropvlm.readers.spaces import restore_spaces, split_glued_words


def centres(text: str, wide: set[int], pitch: float = 10.0, gap: float = 16.0) -> list[float]:
    """x centres with a `gap` (instead of `pitch`) before every index in `wide`."""
    out, x = [], 0.0
    for i in range(len(text)):
        x += gap if i in wide else (pitch if i else 0.0)
        out.append(x)
    return out


def test_wide_gaps_between_letter_runs_become_spaces():
    glued = "SANYUDESIGNSTUDIO"
    assert restore_spaces(glued, centres(glued, {5, 11})) == "SANYU DESIGN STUDIO"
    assert restore_spaces(glued, centres(glued, set())) == glued  # no wide gap, nothing changes


def test_pieces_with_spaces_of_their_own_get_their_missing_ones():
    partly = "SYARIKATPERNIAGAAN GIN KEE"  # a page read: one break dropped, two kept
    assert restore_spaces(partly, centres(partly, {8, 18, 22})) == "SYARIKAT PERNIAGAAN GIN KEE"
    assert restore_spaces("ACME", centres("ACME", {2})) == "AC ME"  # 3 gaps: enough for a pitch
    assert restore_spaces("ABC", centres("ABC", {2})) == "ABC"  # 2 gaps: too few to tell


def test_digits_and_punctuation_are_never_split():
    amount = "RM1234.50"  # a wide gap between digits is a thousands gap, not a word break
    assert restore_spaces(amount, centres(amount, {3, 6})) == "RM1234.50"
    assert restore_spaces("NO.148,JALAN", centres("NO.148,JALAN", {3, 7})) == "NO.148,JALAN"
    assert restore_spaces("KPB6KAWASAN", centres("KPB6KAWASAN", {3, 4})) == "KPB 6 KAWASAN"


def test_positions_that_do_not_match_the_text_leave_it_alone():
    assert restore_spaces("SANYUDESIGNSTUDIO", [0.0, 10.0]) == "SANYUDESIGNSTUDIO"


def test_the_spaced_engine_reads_the_same_characters_with_its_spaces_back(tmp_path):
    """Real RapidOCR on the zoomed crops of synthetic shop names: the `rapidocr-spaced`
    engine returns the plain engine's characters, only with spaces added (never removed)."""
    import json

    from cropvlm.box import Box
    from cropvlm.crops import resize_long_side
    from cropvlm.readers.ocr_engines import make_engine
    from cropvlm.render import RenderConfig, render_document
    from cropvlm.specs import build_reader
    from cropvlm.synthetic.dataset import write_dataset

    assert build_reader("ocr:rapidocr-spaced@384").version == "ocr:rapidocr-spaced@384"
    write_dataset(tmp_path, 4, seed=1_000_003, kinds=("receipt",))
    plain, spaced = make_engine("rapidocr"), make_engine("rapidocr-spaced")
    added = 0
    for row in (tmp_path / "labels.jsonl").read_text().splitlines():
        label = json.loads(row)
        if label["field"] != "company":
            continue
        page = render_document((tmp_path / label["doc"]).read_bytes(), RenderConfig(dpi=150)).pages[0]
        box = Box(*label["box"])
        crop = resize_long_side(page.crop(box.scaled(max(1.0, 0.04 / box.area)).to_pixels(*page.size)), 384)
        a, b = " ".join(p.text for p in plain.read_pieces(crop)), " ".join(p.text for p in spaced.read_pieces(crop))
        assert a.replace(" ", "") == b.replace(" ", "") and b.count(" ") >= a.count(" ")
        added += b.count(" ") - a.count(" ")
    assert added > 0  # these bold names come out glued from the plain engine


def test_numbers_glued_to_words_are_split_in_free_text():
    read = "NO.205,JALAN PUTRA13, TAMAN Keystone JAYA, 50450KUALA LUMPUR, W.P"
    assert split_glued_words(read) == "NO.205,JALAN PUTRA 13, TAMAN Keystone JAYA, 50450 KUALA LUMPUR, W.P"
    assert split_glued_words("231Market St. Dallas") == "231 Market St. Dallas"
    assert split_glued_words("Müller2") == "Müller 2"  # letters beyond ASCII


def test_ordinals_codes_postcodes_house_numbers_and_case_slips_stay_whole():
    for text in ("1ST FLOOR, 21ST AVE, 3rd Street", "London SW1A1AA", "12A JALAN B2", "LOT 5, 4WD, 10KG",
                 "JALAN SS23/11, PT17920", "TAMAN RedwOod JAYA, LakeSide", "MacArthur Rd, DeWitt"):
        assert split_glued_words(text, address=True) == text


def test_a_capital_after_lower_case_letters_is_a_word_break_in_addresses_only():
    assert split_glued_words("Lot 3,JalanPelabur, ShahAlam", address=True) == "Lot 3,Jalan Pelabur, Shah Alam"
    assert split_glued_words("FamilyMart") == "FamilyMart"  # a name written that way
