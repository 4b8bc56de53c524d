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


def test_pieces_the_recogniser_segmented_itself_are_left_alone():
    assert restore_spaces("GARDENIA", centres("GARDENIA", {2})) == "GARDENIA"  # short
    spaced = "SANYU DESIGN ENTERPRISE"  # has spaces already: a wide gap inside a word is noise
    assert restore_spaces(spaced, centres(spaced, {3, 15})) == spaced
    glued = "TAMANLAKESIDEJAYA"  # TA|MAN: a 2-letter side is too short to be sure
    assert restore_spaces(glued, centres(glued, {2, 5, 13})) == "TAMAN LAKESIDE JAYA"


def test_ids_digits_and_punctuation_are_never_split():
    invoice = "INVOICE1182161AB"  # wide gaps around a short letter run and beside digits
    assert restore_spaces(invoice, centres(invoice, {3, 7, 14})) == invoice
    address = "NO.148,JALANPERMAS19"  # letters beside digits may be an id: left alone
    assert restore_spaces(address, centres(address, {3, 7, 12, 18})) == address
    assert restore_spaces("TAMANLAKESIDE,JAYA", centres("TAMANLAKESIDE,JAYA", {5, 14})) == "TAMAN LAKESIDE,JAYA"


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
