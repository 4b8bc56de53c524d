"""`cropvlm extract --reader openai:MODEL` against a local server that speaks the protocol:
the spec picks the backend, the answers land with the reader's version as provenance."""

from __future__ import annotations

import sys
from pathlib import Path

from cli.main import main
from tests.flows.documents import good_documents, write_folder
from tests.flows.test_extract_flow import RECEIPT, query

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cropvlm"))
from fake_openai_server import FakeOpenAIServer  # noqa: E402


def test_cli_extract_with_an_openai_compatible_reader(tmp_path, monkeypatch, capsys):
    with FakeOpenAIServer(api_key="sk-flow-test") as server:
        server.answers = {"What is the total amount paid?": "RM 60.30", "What is the date of this receipt?": "19/10/2018"}
        server.default_answer = "ACME SDN BHD"
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-flow-test")
        monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
        monkeypatch.setenv("CROPVLM_ARTIFACTS_URI", str(tmp_path / "artifacts"))
        source = write_folder(tmp_path / "docs", good_documents())
        status = main(["extract", str(source), "--templates", RECEIPT, "--policy", "center@60",
                       "--reader", "openai:gpt-4.1-nano@512", "--no-progress"])
        requests = server.completion_requests
    assert status == 0
    assert len(requests) == 3 * 4  # documents x fields, each with page and crop
    assert all(sum(p["type"] == "image_url" for p in r.body["messages"][0]["content"]) == 2 for r in requests)
    rows = query(f"sqlite:///{tmp_path / 'db.sqlite'}", "SELECT field, answer, value, reader FROM extracted_fields")
    values = {(r.field, r.value) for r in rows}
    assert ("total", "60.30") in values and ("date", "2018-10-19") in values
    assert {r.reader for r in rows} == {"openai:gpt-4.1-nano@512"}
    assert "sk-flow-test" not in capsys.readouterr().out
