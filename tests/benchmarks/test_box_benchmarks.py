"""benchmarks/ground_labels.py and benchmarks/policy_boxes.py on synthetic documents, whose
gold boxes say where each value is printed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    from cropvlm.synthetic.dataset import write_dataset

    folder = tmp_path_factory.mktemp("synthetic")
    write_dataset(folder, 2, seed=11)
    return folder


def test_policy_boxes_counts_the_oracle_as_containing_and_a_corner_box_as_missing(labelled, tmp_path):
    boxes = load("policy_boxes")
    oracle = boxes.main([str(labelled), "oracle"])
    assert oracle["labels"] == 8 and all(f["contains"] == 1.0 for f in oracle["fields"].values())
    keep = tmp_path / "docs.txt"
    keep.write_text(json.loads((labelled / "labels.jsonl").read_text().splitlines()[0])["doc"])
    full = boxes.main([str(labelled), "full", "--docs", str(keep)])
    assert full["labels"] == 4 and all(f["page"] == 1.0 for f in full["fields"].values())
    from cropvlm.box import Box

    assert boxes.coverage(Box(0, 0, 10, 10), Box(5, 5, 15, 15)) == pytest.approx(0.25)


@pytest.mark.slow
def test_grounded_labels_carry_boxes_over_the_printed_values(labelled, tmp_path):
    out = tmp_path / "grounded"
    stripped = tmp_path / "stripped"
    stripped.mkdir()
    rows = [json.loads(line) for line in (labelled / "labels.jsonl").read_text().splitlines()]
    gold = {(r["doc"], r["field"]): r["box"] for r in rows}
    (stripped / "labels.jsonl").write_text("".join(
        json.dumps({k: r[k] for k in ("doc", "field", "question", "answer")}) + "\n" for r in rows))
    for r in rows:
        if not (stripped / r["doc"]).exists():
            (stripped / r["doc"]).symlink_to(labelled / r["doc"])
    summary = load("ground_labels").main([str(stripped), str(out)])
    assert summary["labels"] == 8 and summary["grounded"] >= 6
    grounded = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    assert len(grounded) == 8 and all((out / r["doc"]).is_file() for r in grounded)
    boxes = load("policy_boxes")
    from cropvlm.box import Box

    for r in grounded:
        if "box" in r:  # over the value the generator printed
            assert boxes.coverage(Box(*r["box"]), Box(*gold[(r["doc"], r["field"])])) > 0.5, r
