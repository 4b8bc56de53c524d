"""The extract flow with Hugging Face policy and reader: tiny random-weight checkpoints
built in code and loaded with from_pretrained, as real ones are. Answers are garbage; the
plumbing (specs, batching, provenance, persistence) is what is tested."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from flows.extract import extract  # noqa: E402
from tests.flows.documents import good_documents, write_folder  # noqa: E402
from tests.flows.test_extract_flow import RECEIPT, query  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cropvlm"))
import tiny_models  # noqa: E402


def test_extract_with_hf_policy_and_reader(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: thread hand-offs cost more than they save
    try:
        checkpoint = tiny_models.build_idefics3(tmp_path / "tiny-idefics3")
        source = write_folder(tmp_path / "docs", good_documents())
        db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        summary = extract(source=str(source), templates=[RECEIPT], policy=f"hf:{checkpoint}",
                          reader=f"hf:{checkpoint}", database_url=db_url, artifacts_uri=str(tmp_path / "art"))
    finally:
        torch.set_num_threads(threads)
    assert (summary["documents_extracted"], summary["answers_written"]) == (3, 12)
    rows = query(db_url, "SELECT policy, reader, confidence, crop_x1 FROM extracted_fields")
    assert len(rows) == 12
    assert all(r.policy.startswith("hf:") and r.reader.startswith("hf:") for r in rows)
    assert all(0 <= r.confidence <= 1 for r in rows)
    # a random policy emits no valid box: every answer fell back to the whole page, and says so
    invalid = query(db_url, "SELECT count(*) FROM answers WHERE NOT policy_valid")[0][0]
    assert invalid == sum(1 for r in rows if r.crop_x1 is None)
