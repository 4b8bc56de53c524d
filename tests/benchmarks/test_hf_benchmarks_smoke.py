"""The GPU extract benchmark and the encode benchmark run end to end on the CPU with tiny
models (`--device cpu --tiny`), so a device session does not find them broken."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def offline_hub(monkeypatch):
    """No hub access; torch's thread count restored (gpu_extract sets 1 on the CPU)."""
    import torch

    threads = torch.get_num_threads()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    yield
    torch.set_num_threads(threads)


def load(name: str):
    sys.path.insert(0, str(BENCHMARKS))  # the scripts import their helpers from beside them
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_gpu_extract_reports_a_row_per_setting_with_its_time_split(offline_hub, tmp_path):
    report = load("gpu_extract").main([
        "--device", "cpu", "--tiny", "--batch-sizes", "8", "--rounds", "1", "--policy-batch", "4",
        "--reader-batch", "4", "--prefetch", "both", "--shrink", "both", "--json", str(tmp_path / "r.json"),
    ])
    rows = report["rows"]
    assert [(r["prefetch"], r["shrink"]) for r in rows] == [(False, False), (False, True), (True, False), (True, True)]
    for row in rows:
        assert "error" not in row
        assert row["pages_per_s"] > 0 and row["policy_calls"] == row["reader_calls"] == 2
        assert row["generate_only_pages_per_s"] >= row["pages_per_s"]  # the models alone are never slower
        assert row["policy_generate_s"] > 0 and row["reader_preprocess_s"] > 0
        assert row["reader_crop_share"] == 1.0  # random boxes replaced: the reader reads page + crop
    assert (tmp_path / "r.json").read_text().startswith("{")


def test_gpu_extract_variants_are_rows_with_exactly_those_settings(offline_hub, tmp_path):
    module = load("gpu_extract")
    report = module.main([
        "--device", "cpu", "--tiny", "--rounds", "1", "--warmup-rounds", "0", "--boxes", "policy",
        "--variant", "batch=8,policy_batch=4,tensors=off", "--variant", "batch=4,prefetch=off,tokenizer_threads=on",
        "--variant", "batch=8,policy_batch=4,reader_batch=2,interleave=off",
    ])
    got = [(r["batch_requests"], r["policy_calls"], r["reader_calls"], r["tensors"], r["prefetch"],
            r["tokenizer_threads"], r["interleaved"]) for r in report["rows"]]
    assert got == [(8, 2, 2, False, True, False, True), (4, 1, 1, True, False, True, False),
                   (8, 2, 4, True, True, False, False)]
    assert all(r["reader_crop_share"] == 0.0 for r in report["rows"])  # random boxes: page only
    with pytest.raises(SystemExit, match="unknown setting"):
        module.parse_variant("batch=8,colour=red", {})


def test_hf_encode_times_both_inputs_with_and_without_shrinking(offline_hub):
    report = load("hf_encode").main(["--pages", "2", "--fields", "2", "--repeats", "1", "--tokenizer-requests", "64"])
    assert [(r["inputs"], r["shrink"], r["distinct"]) for r in report["rows"]] == [
        ("reader", False, False), ("reader", True, False), ("reader", True, True),
        ("policy", False, False), ("policy", True, False), ("policy", True, True)]
    assert all(r["requests"] == 4 and r["seconds"] > 0 for r in report["rows"])
    assert [(r["requests"], r["prompts"]) for r in report["tokenizer"]] == [(64, 64), (64, 2)]  # 2 questions
