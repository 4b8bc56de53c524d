"""The learned answer head: candidates, fitting, calibration, files, and the reader using it.

Pages are OCR lines built in code with a known layout: a tall company name, an address,
a labelled date, item rows, SUBTOTAL / TAX / TOTAL and, on most pages, CASH and CHANGE
rows whose amounts are larger than the total - so "the largest amount" is usually wrong
and the head has to learn that the answer sits on the TOTAL row.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from PIL import Image

from cropvlm.answer_head.candidates import candidates
from cropvlm.answer_head.examples import field_candidates
from cropvlm.answer_head.features import Page
from cropvlm.answer_head.model import AnswerHead, HeadError
from cropvlm.answer_head.training import Example, HeadConfig, fit_head
from cropvlm.errors import SpecError
from cropvlm.readers.base import ReadRequest
from cropvlm.readers.ocr import OcrReader
from cropvlm.readers.ocr_lines import OcrLine, segment_lines
from cropvlm.specs import build_reader
from tests.cropvlm.ocr_helpers import COMPANY, DATE, TOTAL, lines_of, piece

SMALL = HeadConfig(rounds=60, num_leaves=7, min_data_in_leaf=5, folds=3)


def receipt(seed: int) -> tuple[list[OcrLine], dict[str, str]]:
    rng = random.Random(seed)
    name = rng.choice(["KEDAI", "SYARIKAT", "RESTORAN", "MINI MARKET"]) + " " + \
        rng.choice(["MAJU", "JAYA", "SINAR", "BESTARI"]) + " " + rng.choice(["SDN BHD", "ENTERPRISE", "TRADING"])
    date = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2018"
    prices = [rng.randint(100, 3000) / 100 for _ in range(rng.randint(2, 5))]
    subtotal = sum(prices)
    tax = round(subtotal * 0.06, 2)
    total = round(subtotal + tax, 2)
    pieces = [piece(name, 40, 10, height=22, char=12), piece(f"NO {rng.randint(1, 99)}, JALAN BESAR", 40, 40),
              piece("TEL 03-5551234", 40, 60), piece("DATE:", 40, 90), piece(date, 120, 90)]
    y = 120
    for i, price in enumerate(prices):
        pieces += [piece(f"ITEM {i + 1}", 40, y), piece(f"{price:.2f}", 300, y)]
        y += 20
    rows = [("SUBTOTAL", subtotal), ("TAX 6%", tax), ("TOTAL", total)]
    if rng.random() < 0.8:
        cash = float(rng.choice([50, 100, 200])) if total < 50 else total + rng.randint(1, 40)
        rows += [("CASH", cash), ("CHANGE", cash - total)]
    for label, amount in rows:
        pieces += [piece(label, 40, y), piece(f"{amount:.2f}", 300, y)]
        y += 20
    return segment_lines(pieces), {"company": name, "date": date, "total": f"{total:.2f}"}


def examples(seeds, spec) -> list[Example]:
    out = []
    for seed in seeds:
        lines, gold = receipt(seed)
        out.append(Example(f"doc{seed}", field_candidates([Page.of(lines)], spec), gold[spec.field]))
    return out


@pytest.fixture(scope="module")
def head() -> AnswerHead:
    return fit_head([ex for spec in (TOTAL, DATE, COMPANY) for ex in examples(range(80), spec)], SMALL, "test")


def accuracy(head: AnswerHead, exs: list[Example]) -> float:
    return float(np.mean([ex.field.labels(ex.gold)[head.pick(ex.field).index] for ex in exs]))


def test_candidates_list_every_typed_value_and_line_runs():
    lines = lines_of("ACME SDN BHD", "DATE 19/10/2018", "SUBTOTAL 55.00", "TOTAL 60.30", "CASH 100.00")
    amounts = {c.value for c in candidates(lines, TOTAL)}
    assert amounts == {"55.00", "60.30", "100.00"}
    assert [c.value for c in candidates(lines, DATE)] == ["2018-10-19"]
    texts = {c.value for c in candidates(lines, COMPANY)}
    assert {"ACME SDN BHD", "ACME SDN BHD DATE 19 10 2018"} <= texts


def test_head_learns_the_total_row_where_the_largest_amount_is_wrong(head):
    test = examples(range(1000, 1060), TOTAL)
    largest = np.mean([ex.gold == max((c for c in ex.field.candidates), key=lambda c: float(c.value)).value
                       for ex in test])
    assert largest < 0.5  # cash tendered is the largest amount on most pages
    assert accuracy(head, test) >= 0.95
    assert accuracy(head, examples(range(1000, 1060), DATE)) >= 0.95
    assert accuracy(head, examples(range(1000, 1060), COMPANY)) >= 0.9


def test_confidence_is_calibrated_probability(head):
    for kind in ("amount", "date", "text"):
        cal = head.calibration[kind]
        assert cal.x == sorted(cal.x) and cal.y == sorted(cal.y)
        assert 0.0 <= cal.y[0] <= cal.y[-1] <= 1.0
    picks = [head.pick(ex.field) for ex in examples(range(2000, 2030), TOTAL)]
    assert all(0.0 <= p.confidence <= 1.0 for p in picks)


def test_save_load_round_trip_same_picks_and_version(head, tmp_path):
    head.save(tmp_path / "h")
    loaded = AnswerHead.load(tmp_path / "h")
    assert loaded.version == head.version and loaded.version.startswith("head#")
    for ex in examples(range(3000, 3010), TOTAL):
        assert loaded.pick(ex.field) == head.pick(ex.field)


def test_bad_head_folders_are_refused_naming_the_file(head, tmp_path):
    with pytest.raises(HeadError, match="no config.json"):
        AnswerHead.load(tmp_path / "missing")
    folder = head.save(tmp_path / "h")
    (folder / "amount.txt").write_text("not a model")
    with pytest.raises(HeadError, match="amount.txt"):
        AnswerHead.load(folder)
    folder = head.save(tmp_path / "h2")
    config = json.loads((folder / "config.json").read_text())
    config["features"] = config["features"][:-1]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(HeadError, match="other features"):
        AnswerHead.load(folder)
    (folder / "config.json").write_text(json.dumps({**config, "format": 99}))
    with pytest.raises(HeadError, match="format 99"):
        AnswerHead.load(folder)


class _Engine:
    name = "fake"

    def __init__(self, lines):
        self.lines = lines
        self.calls = 0

    def read_pieces(self, image, crop=False):
        self.calls += 1
        return self.lines


def test_reader_answers_through_the_head_one_ocr_per_page(head, tmp_path):
    from PIL import Image

    lines, gold = receipt(4242)
    engine = _Engine(lines)
    reader = OcrReader("rapidocr", 768, engine_factory=lambda name: engine, head=head)
    page = Image.new("RGB", (400, 600), "white")
    answers = reader.answer([ReadRequest(page, None, spec) for spec in (COMPANY, DATE, TOTAL)])
    assert [a.text for a in answers] == [gold["company"], gold["date"], gold["total"]]
    assert engine.calls == 1
    assert reader.version == f"ocr:rapidocr@768+{head.version}+words"  # free text: glued words cut
    assert all(0 < a.confidence <= 1 for a in answers)


def test_reader_spec_loads_a_head_folder_or_says_why_not(head, tmp_path):
    folder = head.save(tmp_path / "h")
    assert build_reader(f"ocr:rapidocr@768+head={folder}").version.endswith(f"+{head.version}+words")
    with pytest.raises(HeadError, match="no config.json"):
        build_reader(f"ocr:rapidocr@768+head={tmp_path / 'nope'}")
    with pytest.raises(SpecError, match="use \\+head=FOLDER"):
        build_reader("ocr:rapidocr@768+heads")
    with pytest.raises(SpecError, match="use \\+head=FOLDER"):
        build_reader("ocr:rapidocr@768+head")


def labelled_folder(folder, seeds, cache):
    """Receipt images whose page OCR sits in `cache` (so no engine runs) and their labels."""
    from PIL import Image

    from cropvlm.answer_head.ocr_cache import PageOcr, cache_path, save_pages

    folder.mkdir(parents=True)
    rows = []
    for seed in seeds:
        path = folder / f"r{seed}.png"
        Image.new("RGB", (400, 600), (seed % 256, 255, 255)).save(path)
        lines, gold = receipt(seed)
        save_pages(cache_path(cache, path.read_bytes()), [PageOcr((400, 600), tuple(lines))])
        rows += [json.dumps({"doc": path.name, "field": f, "question": q, "answer": gold[f]})
                 for f, q in (("company", COMPANY.question), ("date", DATE.question), ("total", TOTAL.question))]
    (folder / "labels.jsonl").write_text("\n".join(rows) + "\n")
    return folder


def test_train_head_command_fits_scores_and_writes_a_loadable_head(tmp_path, capsys):
    from cli.main import main

    cache = tmp_path / "cache"
    train = labelled_folder(tmp_path / "train", range(60), cache)
    heldout = labelled_folder(tmp_path / "heldout", range(500, 520), cache)
    out = tmp_path / "head"
    assert main(["train-head", str(train), "--templates", "templates/receipt.yaml", "--cache", str(cache),
                 "--heldout", str(heldout), "--out", str(out), "--no-zoom"]) == 0
    printed = capsys.readouterr().out
    assert "| total | 20 |" in printed and "calibration error" in printed
    head = AnswerHead.load(out)
    assert head.config["documents"] == 60 and head.config["heldout"]["n"] == 60
    assert head.config["heldout"]["exact"] >= 0.9 and not head.zoom_boosters
    assert main(["train-head", "--out", str(out)]) == 2
    assert "needs a FOLDER" in capsys.readouterr().err


def test_the_shipped_head_loads_and_is_the_default_readers():
    from cropvlm.specs import BUNDLED_HEAD, DEFAULT_READER, build_reader

    head = AnswerHead.load(BUNDLED_HEAD)
    assert head.config["reader"] == DEFAULT_READER.partition("+")[0]
    assert "synthetic" in head.config["trained_on"]  # never real documents
    assert sum(p.stat().st_size for p in BUNDLED_HEAD.iterdir()) < 20 * 2**20
    assert build_reader(DEFAULT_READER).version == f"{head.config['reader']}+{head.version}+words"
    assert build_reader(DEFAULT_READER.replace("+head=default", "+head=none")).version == head.config["reader"]


# --- zoom: the company name is cut short on the page's read and whole on a zoomed read ----

def blurred(lines: list[OcrLine], name: str) -> list[OcrLine]:
    """The page as a small budget reads it: on most pages the company name loses letters."""
    if sum(map(ord, name)) % 4 == 0:
        return lines
    return [OcrLine(l.text.replace(name, name[:-3]), l.confidence, l.box) for l in lines]


class _ZoomEngine:
    """Page reads give the blurred page; zoomed reads give the company name across the
    middle of whatever region they are shown (so it lands on the company's row)."""

    name = "fake"

    def __init__(self, lines, name):
        self.page, self.name_text = blurred(lines, name), name
        self.calls: list[bool] = []

    def read_pieces(self, image, crop=False):
        self.calls.append(crop)
        if not crop:
            return self.page
        w, h = image.size
        return [OcrLine(self.name_text, 0.9, (0.1 * w, 0.35 * h, 0.9 * w, 0.65 * h))]


def zoom_examples(seeds, head):
    """What `label_examples` gives: page candidates, and with a head the zoomed group too."""
    from cropvlm.answer_head import zoom

    out = []
    for seed in seeds:
        lines, gold = receipt(seed)
        engine = _ZoomEngine(lines, gold["company"])
        page = Page.of(engine.page, (400, 600))
        field = field_candidates([page], COMPANY)
        zoomed = None
        if head is not None:
            pick = head.pick(field)
            region = zoom.band_around(page, field.candidates[pick.index].lines)
            region_pieces = zoom.placed(engine.read_pieces(Image.new("RGB", (200, 40)), crop=True), (200, 40),
                                        region.full((400, 600), (400, 600)), (400, 600), (400, 600))
            zoomed = zoom.zoom_field(engine.page, region_pieces, region, (400, 600), field, COMPANY)
        out.append(Example(f"doc{seed}", field, gold["company"], zoomed))
        out.append(Example(f"doc{seed}", field_candidates([page], TOTAL), gold["total"]))
    return out


@pytest.fixture(scope="module")
def zoom_head() -> AnswerHead:
    from cropvlm.answer_head.training import fit_zooming_head

    return fit_zooming_head(lambda head: zoom_examples(range(60), head), SMALL, "test")


def test_zoom_boosters_learn_to_take_the_zoomed_reading(zoom_head, tmp_path):
    from cropvlm.answer_head.scores import score_head

    assert zoom_head.zooms("text") and not zoom_head.zooms("amount")
    heldout = zoom_examples(range(700, 730), zoom_head)
    company = [ex for ex in heldout if ex.zoomed is not None]
    assert accuracy(zoom_head, company) < 0.6  # the page alone often lacks the whole name
    scores = score_head(zoom_head, heldout)
    assert scores.by_field["company"][1] >= 0.9 and scores.by_field["total"][1] >= 0.9
    loaded = AnswerHead.load(zoom_head.save(tmp_path / "z"))
    assert loaded.zooms("text") and json.loads((tmp_path / "z" / "config.json").read_text())["format"] == 3
    assert [loaded.pick_zoomed(ex.zoomed) for ex in company[:5]] == [zoom_head.pick_zoomed(ex.zoomed)
                                                                     for ex in company[:5]]


def test_reader_zooms_around_its_pick_or_into_the_policys_crop(zoom_head):
    seed = next(s for s in range(4343, 4400) if sum(map(ord, receipt(s)[1]["company"])) % 4)  # a blurred page
    lines, gold = receipt(seed)
    engine = _ZoomEngine(lines, gold["company"])
    reader = OcrReader("rapidocr", 600, engine_factory=lambda name: engine, head=zoom_head)
    page = Image.new("RGB", (400, 600), "white")
    answer = reader.answer([ReadRequest(page, None, COMPANY)])[0]
    assert (answer.text, answer.source) == (gold["company"], "zoom")
    assert engine.calls == [False, True]  # the page, then one band
    engine.calls.clear()
    top = page.crop((0, 0, 400, 80))
    answers = reader.answer([ReadRequest(page, top, COMPANY, crop_box=(0, 0, 400, 80)),
                             ReadRequest(page, top, TOTAL, crop_box=(0, 0, 400, 80))])
    assert (answers[0].text, answers[0].source) == (gold["company"], "crop")
    assert (answers[1].text, answers[1].source) == (gold["total"], "page")  # amounts: the page, no crop read
    assert engine.calls == [False, True]


def test_a_format_2_head_still_loads_and_never_zooms(head, tmp_path):
    folder = head.save(tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    for key in ("zoom_boosters", "zoom_calibration"):
        config.pop(key)
    (folder / "config.json").write_text(json.dumps({**config, "format": 2}))
    assert not AnswerHead.load(folder).zooms("text")


def test_a_crop_region_grows_to_the_whole_lines_it_holds():
    """A policy's box whose edge runs through a line would cut its first or last letters out of
    the zoomed read (`SANYU STATIONERY SH(`): the region takes in every piece it holds."""
    from cropvlm.answer_head.zoom import Region
    from cropvlm.readers.ocr_lines import OcrLine

    name = OcrLine("SANYU STATIONERY SHOP", 0.9, (40.0, 100.0, 360.0, 120.0))  # centre (200, 110): held
    outside = OcrLine("TEL 03-1234", 0.9, (300.0, 300.0, 400.0, 320.0))  # centre outside: left out
    crop = Region(100.0, 90.0, 300.0, 130.0)
    assert crop.grown_to([name, outside]) == Region(40.0, 90.0, 360.0, 130.0)
    assert crop.grown_to([outside]) == crop


def test_a_glued_candidate_is_labelled_and_answered_as_the_reader_will_say_it():
    """The reader cuts glued words in the head's free-text answer, so the head learns from
    labels of the cut text: a page that only reads `KUALALUMPUR` still has a right candidate."""
    from tests.cropvlm.ocr_helpers import ADDRESS

    field = field_candidates([Page.of(lines_of("ACME SDN BHD", "NO 5, JALAN BESAR,", "50450 KUALALUMPUR"))],
                             ADDRESS)
    gold = "NO 5, JALAN BESAR, 50450 KUALA LUMPUR"
    right = [field.answer(i) for i in np.flatnonzero(field.labels(gold))]
    assert right == [gold]
    assert any(c.text == "NO 5, JALAN BESAR, 50450 KUALALUMPUR" for c in field.candidates)


def test_word_features_tell_a_read_made_of_words_from_a_misread_one():
    from cropvlm.answer_head.examples import all_feature_names
    from tests.cropvlm.ocr_helpers import ADDRESS

    names = all_feature_names()
    known, unknown, cuts = (names.index(n) for n in ("known_words", "unknown_words", "cuts"))
    above_comma, below_postcode = names.index("above_comma"), names.index("below_postcode")
    for text, want in (("JALAN BESAR TAMAN MELAWATI", (1.0, 0.0)), ("JALAM BFSAR TAMAN MELAWATI", (0.5, 2.0))):
        field = field_candidates([Page.of(lines_of(text))], ADDRESS)
        assert tuple(field.features[0, [known, unknown]]) == want
    field = field_candidates([Page.of(lines_of("NO 5, JALAN BESAR,", "TAMAN MELAWATI", "53100 KUALALUMPUR"))],
                             ADDRESS)
    middle = [c.text for c in field.candidates].index("TAMAN MELAWATI")
    assert field.features[middle, above_comma] == 1.0 and field.features[middle, below_postcode] == 1.0
    last = [c.text for c in field.candidates].index("53100 KUALALUMPUR")
    assert field.features[last, cuts] == 1.0


def test_an_id_glued_to_its_label_is_also_a_candidate_without_it():
    """OCR drops the space after a label (`INVOICENUMBERM54955`); the part after a field alias
    or number word is a candidate too, and a code that merely starts with letters stays whole."""
    from tests.cropvlm.ocr_helpers import INVOICE_NO

    def texts(line):
        return [c.text for c in candidates(lines_of(line), INVOICE_NO)]

    assert texts("INVOICENUMBERM54955") == ["INVOICENUMBERM54955", "M54955"]
    assert texts("Invoice No.2019-0042") == ["No.2019-0042", "2019-0042"]
    assert texts("INV-01371") == ["INV-01371"]
    glued = candidates(lines_of("TAX INVOICENO:A1234"), INVOICE_NO)
    assert [(c.text, c.start) for c in glued][-1] == ("A1234", 14)
