"""benchmarks/compare_answers.py: flips between two evaluation runs, counted and shown."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_answers.py"
COLUMNS = ["reader", "policy", "doc", "field", "type", "page", "gold", "prediction", "exact", "anls", "seconds", "pixels"]


def load_script():
    spec = importlib.util.spec_from_file_location("compare_answers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path: Path, rows: list[tuple[str, str, str, str, int]]) -> str:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for policy, doc, field, prediction, exact in rows:
            writer.writerow({"reader": "ocr:x@768", "policy": policy, "doc": doc, "field": field, "type": "text",
                             "page": 1, "gold": "A", "prediction": prediction, "exact": exact, "anls": exact,
                             "seconds": 0.1, "pixels": 10})
    return str(path)


def test_counts_fixed_and_broken_answers_per_policy_kind_and_field(tmp_path, capsys):
    before = write(tmp_path / "a.csv", [("heatmap:heatmap#aa", "d1", "total", "A", 1),
                                        ("heatmap:heatmap#aa", "d2", "total", "B", 0),
                                        ("oracle@0.04", "d1", "company", "B", 0),
                                        ("full", "d9", "company", "A", 1)])  # not in the second run
    after = write(tmp_path / "b.csv", [("heatmap:/tmp/x", "d1", "total", "C", 0),
                                       ("heatmap:/tmp/x", "d2", "total", "A", 1),
                                       ("oracle@0.04", "d1", "company", "A", 1)])
    load_script().main([before, after])
    out = capsys.readouterr().out
    assert "3 answers compared; fixed 2, broken 1" in out
    assert "heatmap    total            broken  1" in out and "oracle     company          fixed   1" in out
    assert "broken: heatmap d1 total: gold 'A', was 'A', now 'C'" in out
