"""cropvlm.evaluation: metrics, report files, the runner (with a fake reader), and a small
end-to-end `cropvlm evaluate` on synthetic documents. Labels: test_labels.py."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from cropvlm.evaluation import ALL, CSV_COLUMNS, Scored, aggregate, evaluate, plan_configs, run_configs
from cropvlm.evaluation import runner as runner_module
from cropvlm.evaluation.metrics import pixels_seen, score
from cropvlm.evaluation.report import markdown, plot_png, plot_text, write_results_csv
from cropvlm.evaluation.runner import Config, ConfigStats
from cropvlm.labels import load_labels
from cropvlm.readers.base import Answer
from tests.cropvlm.label_helpers import label, write_labels

REPO = Path(__file__).resolve().parents[2]
RECEIPT, INVOICE = REPO / "templates/receipt.yaml", REPO / "templates/invoice.yaml"
HAS_TESSERACT = shutil.which("tesseract") is not None


# --- metrics -------------------------------------------------------------------------------

def test_exact_match_normalises_by_type_and_anls_scores_text():
    assert score("r", "p", "d", "date", "date", "19/10/2018", "2018-10-19", 1, 0, 0).exact
    assert score("r", "p", "d", "total", "amount", "1,234.50", "RM 1234.5", 1, 0, 0).exact
    assert score("r", "p", "d", "company", "text", "Indah Gift & Home", "INDAH GIFT HOME.", 1, 0, 0).exact
    near = score("r", "p", "d", "company", "text", "ABCDEFGHIJ", "ABCDEFGHIX", 1, 0, 0)
    assert not near.exact and near.anls == pytest.approx(0.9)


def test_aggregate_per_field_and_all_with_hand_computed_numbers():
    def s(policy, field, exact, anls, seconds, pixels):
        return Scored("r", policy, "d", field, "text", "g", "p", 1, exact, anls, seconds, pixels)

    scored = [s("full", "a", True, 1.0, 1.0, 100), s("full", "a", False, 0.5, 3.0, 300),
              s("full", "b", False, 0.0, 2.0, 200), s("center", "b", True, 1.0, 4.0, 1000)]
    rows = aggregate(scored, field_order=["b", "a"])
    got = [(r.policy, r.field, r.n, r.exact, r.anls, r.seconds_per_answer, r.pixels_per_answer) for r in rows]
    assert got == [
        ("full", "b", 1, 0.0, 0.0, 2.0, 200.0),
        ("full", "a", 2, 0.5, 0.75, 2.0, 200.0),
        ("full", ALL, 3, pytest.approx(1 / 3), pytest.approx(0.5), 2.0, 200.0),
        ("center", "b", 1, 1.0, 1.0, 4.0, 1000.0),
        ("center", ALL, 1, 1.0, 1.0, 4.0, 1000.0),
    ]


def test_calibration_error_and_accuracy_at_coverage_with_hand_computed_numbers():
    from cropvlm.evaluation.metrics import confidence_rows

    def s(policy, confidence, exact):
        return Scored("r", policy, "d", "f", "text", "g", "p", 1, exact, 1.0 * exact, 1.0, 1, confidence=confidence)

    # 0.9-bin: confidence 0.9, half right -> |0.9 - 0.5| x 2; 0.1-bin: 0.1, none right -> 0.1 x 2
    scored = [s("full", 0.9, True), s("full", 0.9, False), s("full", 0.1, False), s("full", 0.1, False),
              s("center", 0.6, True)]
    full, center = confidence_rows(scored)
    assert (full.policy, full.n, full.calibration_error) == ("full", 4, pytest.approx(0.25))
    points = {round(c.threshold, 2): (c.share, c.exact) for c in full.coverage}
    assert points[0.0] == (1.0, 0.25) and points[0.5] == (0.5, 0.5) and points[0.95] == (0.0, 0.0)
    assert center.calibration_error == pytest.approx(0.4)
    text = markdown(aggregate(scored), [], confidence=[full, center])
    assert "| `r` | `full` | 0.250 | 50%, 0.500 | 50%, 0.500 | 50%, 0.500 | 50%, 0.500 |" in text


def test_pixels_seen_is_page_plus_crop_at_the_budget():
    assert pixels_seen((2000, 1000), None, 768) == 768 * 384
    assert pixels_seen((2000, 1000), (100, 50), 768) == 768 * 384 + 768 * 384  # the crop is zoomed
    assert pixels_seen((2000, 1000), (100, 50), None) == 2000 * 1000 + 100 * 50
    # a reader that says how its model resizes (an HF processor) is counted that way instead
    assert pixels_seen((2000, 1000), (100, 50), 768, input_size=lambda size: (28, 14)) == 2 * 28 * 14


# --- report --------------------------------------------------------------------------------

def test_results_csv_markdown_and_plot(tmp_path):
    scored = [Scored("ocr:x@768", p, "d", f, "text", "g", "p", 1, e, a, sec, 1000)
              for p, f, e, a, sec in [("full", "total", True, 1.0, 0.5), ("full", "date", False, 0.2, 0.7),
                                      ("center@50", "total", False, 0.0, 1.5), ("center@50", "date", True, 1.0, 1.0)]]
    rows = aggregate(scored)
    path = write_results_csv(rows, tmp_path / "results.csv")
    with path.open() as handle:
        reader = csv.reader(handle)
        assert tuple(next(reader)) == CSV_COLUMNS == (
            "reader", "policy", "field", "n", "exact", "anls", "seconds_per_answer", "pixels_per_answer")
        body = list(reader)
    assert len(body) == 6 and [r[2] for r in body].count(ALL) == 2
    assert ["ocr:x@768", "full", ALL, "2", "0.5000", "0.6000", "0.6000", "1000"] in body

    stats = [ConfigStats("ocr:x@768", "full", pages=2, policy_seconds=0.5, reader_seconds=0.5)]
    text = markdown(rows, stats, notes=["learned: absent"])
    assert "| `ocr:x@768` | `full` | 2 | 0.500 | 0.600 | 0.600 | 1 k | 2.00 |" in text
    assert "| field | reader | policy | n | exact | ANLS |" in text and "- learned: absent" in text
    # one row per field and configuration, the best first within a field, fields in their order
    assert text.split("| field | reader | policy | n | exact | ANLS |\n|---|---|---|---:|---:|---:|\n")[1].split(
        "\n\n")[0].splitlines() == [
        "| total | `ocr:x@768` | `full` | 1 | 1.000 | 1.000 |",
        "| total | `ocr:x@768` | `center@50` | 1 | 0.000 | 0.000 |",
        "| date | `ocr:x@768` | `center@50` | 1 | 1.000 | 1.000 |",
        "| date | `ocr:x@768` | `full` | 1 | 0.000 | 0.200 |"]

    png = plot_png(rows, tmp_path / "plot.png", "synthetic:2@seed=0", 1)
    with Image.open(png) as image:
        image.load()
        assert image.format == "PNG" and image.size[0] > 300


def test_specs_are_code_spans_so_markdown_renders_no_mailto_links():
    rows = aggregate([Scored("ocr:tesseract@768", "oracle@0.04", "d", "total", "text", "g", "g", 1, True, 1.0, 0.5,
                             1000)])
    text = markdown(rows, [])
    assert "`oracle@0.04`" in text and "`ocr:tesseract@768`" in text
    bare = text.replace("`oracle@0.04`", "").replace("`ocr:tesseract@768`", "")
    assert "@" not in bare  # nothing a renderer could autolink


def test_the_plot_title_names_the_dataset_and_n_and_the_legend_is_short():
    scored = [Scored("ocr:x@768", p, f"d{i}", "total", "text", "g", "g", 1, True, 1.0, 0.5, 1000)
              for p in ("full", "oracle@0.04") for i in range(3)]
    title, subtitle, legend = plot_text(aggregate(scored), "synthetic:3@seed=0", 3)
    assert title == "synthetic:3@seed=0 (3 documents, n = 3 answers per configuration)"
    assert "reader ocr:x@768" in subtitle and "exact match (filled), ANLS (ring)" in subtitle
    assert legend == ["full", "oracle@0.04"]  # one reader: named once, in the subtitle
    two_readers = scored + [Scored("ocr:x@1536", "full", "d0", "total", "text", "g", "g", 1, True, 1.0, 1.0, 4000)]
    title, subtitle, legend = plot_text(aggregate(two_readers))
    assert title == "Evaluation (n = 1–3 answers per configuration)" and "reader" not in subtitle
    assert legend == ["ocr:x@768 / full", "ocr:x@768 / oracle@0.04", "ocr:x@1536 / full"]


def test_the_plot_grows_to_hold_a_long_legend(tmp_path):
    scored = [Scored("ocr:x@768", f"some-rather-long-policy-name-{i}@0.{i}", "d", "total", "text", "g", "g", 1, True,
                     1.0, 0.5, 1000) for i in range(12)]
    with Image.open(plot_png(aggregate(scored), tmp_path / "plot.png", "x" * 300, 1)) as image:
        width, height = image.size
        assert width == 960 and height > 640  # legend rows added under the axes, not squeezed beside them


# --- runner --------------------------------------------------------------------------------

class PageColorReader:
    """Answers with the page's colour name; page 2 (blue) is always the more confident."""

    version = "color"
    budget = 100

    def __init__(self):
        self.calls = 0

    def answer(self, requests):
        self.calls += 1
        out = []
        for request in requests:
            red = request.page.getpixel((0, 0))[0] > 128
            out.append(Answer("red" if red else "blue", None, 0.3 if red else 0.9))
        return out


def two_page_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "two"
    folder.mkdir()
    red, blue = Image.new("RGB", (200, 100), (255, 0, 0)), Image.new("RGB", (200, 100), (0, 0, 255))
    red.save(folder / "doc.tiff", save_all=True, append_images=[blue])
    return write_labels(folder, [label("doc.tiff", "a", "What is A?", "red", page=1, box=[0, 0, 50, 50]),
                                 label("doc.tiff", "b", "What is B?", "red")])


def test_runner_renders_once_uses_the_label_page_else_the_best_page(tmp_path, monkeypatch):
    labels = load_labels(two_page_folder(tmp_path))
    renders = []
    real_render = runner_module.render_document
    monkeypatch.setattr(runner_module, "render_document", lambda data, config: renders.append(1) or real_render(data, config))
    reader = PageColorReader()
    configs = [Config("color", "full"), Config("color", "center@50"), Config("color", "oracle")]
    run = run_configs(labels, configs, resolve_reader=lambda spec: reader, progress=None)

    assert len(renders) == 1 and run.documents == 1 and run.pages == 2
    by = {(s.policy, s.field): s for s in run.scored}
    assert len(run.scored) == 6
    assert by[("full", "a")].page == 1 and by[("full", "a")].prediction == "red" and by[("full", "a")].exact
    assert by[("full", "b")].page == 2 and by[("full", "b")].prediction == "blue"  # most confident page
    # pixels: both pages at budget 100 (200x100 -> 100x50); center@50 adds a 100x50 crop zoomed to 100x50
    assert by[("full", "b")].pixels == 2 * 100 * 50
    assert by[("center@50", "b")].pixels == 2 * (100 * 50 + 100 * 50)
    assert [(s.policy, s.pages) for s in run.stats] == [("full", 2), ("center@50", 2), ("oracle@0.04", 2)]
    assert all(s.seconds >= 0 for s in run.scored)


def test_plan_adds_full_resolution_and_drops_the_oracle_without_boxes():
    configs, notes = plan_configs(["ocr:tesseract@768"], ["full", "center", "oracle"], has_boxes=False)
    assert configs == [Config("ocr:tesseract@768", "full"), Config("ocr:tesseract@768", "center"),
                       Config("ocr:tesseract@full", "full")]
    assert any(n.startswith("oracle: absent") for n in notes) and any(n.startswith("learned: absent") for n in notes)
    configs, notes = plan_configs(["ocr:tesseract@full"], ["full", "oracle", "hf:/models/policy"], has_boxes=True)
    assert configs == [Config("ocr:tesseract@full", "full"), Config("ocr:tesseract@full", "oracle"),
                       Config("ocr:tesseract@full", "hf:/models/policy")]
    assert configs[-1].is_learned and not notes
    configs, _ = plan_configs(["ocr:tesseract@768+head=none"], ["full"], has_boxes=False)
    assert configs[-1] == Config("ocr:tesseract@full+head=none", "full")  # the default reader's row too


def test_an_hf_reader_counts_its_processor_pixels_and_adds_its_default_resolution(tmp_path, monkeypatch):
    """Tiny random-weight SmolVLM (tests/cropvlm/tiny_models.py), offline: at @16 it is below
    the checkpoint's own longest_edge (32), so @default is its full-resolution row."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import tiny_models

    checkpoint = tiny_models.build_idefics3(tmp_path / "tiny")
    low = f"hf:{checkpoint}@16?max_new_tokens=2"
    configs, _ = plan_configs([low], ["full"], has_boxes=False)
    assert configs == [Config(low, "full"), Config(f"hf:{checkpoint}@default?max_new_tokens=2", "full")]
    assert plan_configs([f"hf:{checkpoint}"], ["full"], has_boxes=False)[0] == [Config(f"hf:{checkpoint}", "full")]

    run = run_configs(load_labels(two_page_folder(tmp_path)), configs, progress=None)
    pixels = {(s.reader.split("#")[0].rsplit("@", 1)[1], s.field): s.pixels for s in run.scored}
    # both 200 x 100 pages are asked every question: 16 x 8 each at @16, 32 x 16 at the default
    assert pixels == {("16", "a"): 2 * 16 * 8, ("16", "b"): 2 * 16 * 8,
                      ("default", "a"): 2 * 32 * 16, ("default", "b"): 2 * 32 * 16}


def test_evaluate_needs_a_folder_or_synthetic_documents():
    from cropvlm.errors import CropVLMError

    with pytest.raises(CropVLMError, match="not both"):
        evaluate()


# --- end to end -----------------------------------------------------------------------------

@pytest.mark.skipif(not HAS_TESSERACT, reason="no tesseract binary")
def test_cropvlm_evaluate_on_synthetic_documents_writes_every_configuration(tmp_path, capsys):
    from cli.main import main

    out = tmp_path / "out"
    status = main(["evaluate", "--synthetic", "4", "--templates", str(RECEIPT), "--templates", str(INVOICE),
                   "--readers", "ocr:tesseract@768", "--out", str(out)])
    assert status == 0
    printed = capsys.readouterr()
    assert "| `ocr:tesseract@768` | `oracle@0.04` |" in printed.out and "evaluate: 4/4 documents" in printed.err

    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    configs = list(dict.fromkeys((r["reader"], r["policy"]) for r in rows))
    from cropvlm.specs import build_policy

    learned = build_policy("default").version  # the shipped trained policy is part of every default run
    assert configs == [("ocr:tesseract@768", "full"), ("ocr:tesseract@768", "center@50"),
                       ("ocr:tesseract@768", "random@0"), ("ocr:tesseract@768", "oracle@0.04"),
                       ("ocr:tesseract@768", learned), ("ocr:tesseract@full", "full")]
    overall = {(r["reader"], r["policy"]): r for r in rows if r["field"] == ALL}
    assert all(r["n"] == "16" for r in overall.values())  # 2 invoices + 2 receipts, 4 fields each
    assert {r["field"] for r in rows} == {ALL, "invoice_number", "invoice_date", "total_amount", "vendor",
                                          "company", "date", "address", "total"}
    for r in overall.values():
        assert 0 <= float(r["exact"]) <= 1 and float(r["seconds_per_answer"]) > 0 and float(r["pixels_per_answer"]) > 0
    # the oracle crops the gold box: it must not read worse than no crop at the same budget
    assert float(overall[("ocr:tesseract@768", "oracle@0.04")]["exact"]) >= float(
        overall[("ocr:tesseract@768", "full")]["exact"])
    assert (out / "results.md").read_text().count("| `ocr:tesseract@") >= 10
    with (out / "answers.csv").open() as handle:
        answers = list(csv.DictReader(handle))
    crops = {(a["policy"], a["crop"]) for a in answers}
    assert {c for p, c in crops if p == "full"} == {""}  # the page alone
    assert {c for p, c in crops if p == "center@50"} == {"25.00 25.00 75.00 75.00"}
    oracle = [a for a in answers if a["policy"] == "oracle@0.04"]
    assert len(oracle) == 16 and all(len(a["crop"].split()) == 4 for a in oracle)
    confidences = [float(a["confidence"]) for a in answers]  # the reader's, for accuracy at coverage
    assert all(0 <= c <= 1 for c in confidences) and max(confidences) > 0
    summary = json.loads((out / "summary.json").read_text())
    assert [(c["reader"], c["policy"]) for c in summary["confidence"]] == configs
    assert all(len(c["coverage"]) == 20 and c["coverage"][0]["share"] == 1.0 for c in summary["confidence"])
    assert "| calibration error |" in (out / "results.md").read_text()
    with Image.open(out / "accuracy_vs_seconds.png") as image:
        assert image.format == "PNG"


def test_cropvlm_evaluate_reports_bad_input_with_status_2(tmp_path, capsys):
    from cli.main import main

    assert main(["evaluate", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["evaluate"]) == 2
    assert "FOLDER or --synthetic" in capsys.readouterr().err


class CrashOnRedReader(PageColorReader):
    def answer(self, requests):
        if any(r.page.getpixel((0, 0))[0] > 128 for r in requests):
            raise ZeroDivisionError("division by zero")
        return super().answer(requests)


def test_a_document_the_reader_crashes_on_counts_as_wrong_and_is_listed(tmp_path):
    folder = tmp_path / "crash"
    folder.mkdir()
    Image.new("RGB", (200, 100), (255, 0, 0)).save(folder / "red.png")
    Image.new("RGB", (200, 100), (0, 0, 255)).save(folder / "blue.png")
    labels = load_labels(write_labels(folder, [label("red.png", "a", "What is A?", "red"),
                                               label("blue.png", "a", "What is A?", "blue")]))
    run = run_configs(labels, [Config("crash", "full")], resolve_reader=lambda spec: CrashOnRedReader(), progress=None)
    assert run.errors == ["color / full: red.png: ZeroDivisionError: division by zero"]
    by_doc = {s.doc: s for s in run.scored}
    assert by_doc["red.png"].error and not by_doc["red.png"].exact and by_doc["blue.png"].exact
    (row, overall) = aggregate(run.scored)
    assert overall.n == 2 and overall.exact == 0.5 and overall.pixels_per_answer == 100 * 50  # blue only
    assert run.stats[0].pages == 1


def test_synthetic_documents_are_the_kinds_the_templates_type(tmp_path):
    from cropvlm.errors import CropVLMError
    from cropvlm.evaluation.api import synthetic_kinds

    assert synthetic_kinds([str(RECEIPT)]) == ("receipt",)
    assert synthetic_kinds([str(RECEIPT), str(INVOICE)]) == synthetic_kinds(None) == ("invoice", "receipt")
    other = tmp_path / "purchase_order.yaml"
    other.write_text("name: purchase_order\nversion: 1\nfields:\n"
                     "  - {field: po_number, question: 'What is the purchase order number?', type: text}\n")
    with pytest.raises(CropVLMError, match=r"type no kind of synthetic document: invoice needs .*receipt needs "
                                           r"company, date, address, total \(give templates/receipt.yaml"):
        synthetic_kinds([str(other)])


@pytest.mark.skipif(not HAS_TESSERACT, reason="no tesseract binary")
def test_cropvlm_evaluate_synthetic_with_the_receipt_template_alone(tmp_path, capsys):
    from cli.main import main

    status = main(["evaluate", "--synthetic", "2", "--templates", str(RECEIPT), "--readers", "ocr:tesseract@384",
                   "--policies", "full", "--no-full-resolution", "--out", str(tmp_path / "out")])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert "2 synthetic documents (receipt; seed 0)" in printed.err
    with (tmp_path / "out/results.csv").open() as handle:
        assert {r["field"] for r in csv.DictReader(handle)} == {ALL, "company", "date", "address", "total"}
