"""The `cropvlm` command: exit status, messages, and `db upgrade`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from cli.main import main
from tests.flows.documents import bad_documents, good_documents, write_folder

NEEDS_TESSERACT = pytest.mark.skipif(shutil.which("tesseract") is None, reason="no tesseract binary")

REPO = Path(__file__).resolve().parents[2]
RECEIPT = str(REPO / "templates/receipt.yaml")


def cli_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("CROPVLM_ARTIFACTS_URI", str(tmp_path / "artifacts"))


@NEEDS_TESSERACT  # the reader these tests run with (.ci/run installs it)
def test_exit_status_says_whether_any_document_failed(tmp_path, monkeypatch, capsys):
    cli_env(monkeypatch, tmp_path)
    good = write_folder(tmp_path / "good", good_documents())
    args = ["--templates", RECEIPT, "--reader", "ocr:tesseract@768", "--no-progress"]
    assert main(["extract", str(good), *args]) == 0
    assert "3 extracted, 0 skipped, 0 failed" in capsys.readouterr().out

    mixed = write_folder(tmp_path / "mixed", {"ok.png": good_documents()["scan-named-as.pdf"],
                                              "corrupt.pdf": bad_documents()["bad/corrupt.pdf"]})
    assert main(["extract", str(mixed), *args]) == 1
    out = capsys.readouterr().out
    assert "1 skipped, 1 failed" in out  # ok.png has the same content as a document done above
    assert "FAILED" in out and "corrupt.pdf: corrupt PDF" in out


def test_a_broken_template_stops_the_run_with_a_message_and_status_2(tmp_path, monkeypatch, capsys):
    cli_env(monkeypatch, tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nversion: 1\nfields:\n  - {field: total}\n")
    good = write_folder(tmp_path / "good", good_documents())
    assert main(["extract", str(good), "--templates", str(broken), "--no-progress"]) == 2
    assert "broken.yaml: field 'total': 'question' must be a non-empty string" in capsys.readouterr().err


def test_db_upgrade_creates_the_schema(tmp_path, monkeypatch, capsys):
    cli_env(monkeypatch, tmp_path)
    assert main(["db", "upgrade"]) == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    inspector = inspect(engine)
    assert {"documents", "answers", "extraction_runs", "run_documents"} <= set(inspector.get_table_names())
    assert {"extracted_fields", "document_fields"} <= set(inspector.get_view_names())
    engine.dispose()


@pytest.mark.slow
def test_the_demo_extracts_with_the_shipped_trained_policy(tmp_path, monkeypatch, capsys):
    """`make demo` runs `cropvlm demo`: every answer carries the bundled policy's version and
    a learned crop, not the whole page."""
    from cropvlm.specs import DEFAULT_READER, build_policy

    cli_env(monkeypatch, tmp_path)
    assert main(["demo", "--folder", str(tmp_path / "demo"), "--documents", "1"]) == 0
    assert "1 extracted, 0 skipped, 0 failed" in capsys.readouterr().out
    engine = create_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT policy, crop_x1, crop_y1, crop_x2, crop_y2, reader FROM extracted_fields").all()
    engine.dispose()
    assert len(rows) == 8  # one receipt (4 fields) and one invoice (4 fields)
    assert {row[0] for row in rows} == {build_policy("default").version}
    assert {row[5] for row in rows} == {DEFAULT_READER} == {"ocr:rapidocr-spaced@768"}
    assert all((x2 - x1) * (y2 - y1) < 100 * 100 for _, x1, y1, x2, y2, _ in rows)  # crops, not pages


def test_extract_with_an_unreachable_database_cannot_start_in_one_line(tmp_path, monkeypatch, capsys):
    cli_env(monkeypatch, tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:s3cret@127.0.0.1:1/cropvlm")  # nothing listens on port 1
    source = write_folder(tmp_path / "docs", good_documents())
    assert main(["extract", str(source), "--templates", RECEIPT, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cropvlm: cannot start: database postgresql://app:***@127.0.0.1:1/cropvlm is unreachable")
    assert "Traceback" not in err and "s3cret" not in err
