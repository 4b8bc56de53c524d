"""The `cropvlm` command: exit status, messages, and `db upgrade`."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from cli.main import main
from tests.flows.documents import bad_documents, blank_documents, good_documents, write_folder

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
    from cropvlm.specs import DEFAULT_READER, build_policy, build_reader

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
    shipped = build_reader(DEFAULT_READER).version  # the shipped answer head's version is in it
    assert {row[5] for row in rows} == {shipped} and shipped.startswith("ocr:rapidocr-spaced@768+head#")
    assert all((x2 - x1) * (y2 - y1) < 100 * 100 for _, x1, y1, x2, y2, _ in rows)  # crops, not pages


def test_extract_with_an_unreachable_database_cannot_start_in_one_line(tmp_path, monkeypatch, capsys):
    cli_env(monkeypatch, tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:s3cret@127.0.0.1:1/cropvlm")  # nothing listens on port 1
    source = write_folder(tmp_path / "docs", good_documents())
    assert main(["extract", str(source), "--templates", RECEIPT, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cropvlm: cannot start: database postgresql://app:***@127.0.0.1:1/cropvlm is unreachable")
    assert "Traceback" not in err and "s3cret" not in err


def test_mistakes_are_refused_before_the_run_one_line_each(tmp_path, monkeypatch, capsys):
    cli_env(monkeypatch, tmp_path)
    args = ["extract", str(tmp_path / "nowhere"), "--templates", str(tmp_path / "recipt.yaml"),
            "--policy", "centre", "--reader", "ocr:tesserac@768", "--no-progress"]
    assert main(args) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"cropvlm: cannot start: source folder {tmp_path / 'nowhere'} does not exist",
        f"cropvlm: cannot start: templates: {tmp_path / 'recipt.yaml'}: cannot read template file: "
        f"[Errno 2] No such file or directory: '{tmp_path / 'recipt.yaml'}'",
        "cropvlm: cannot start: policy 'centre': unknown policy spec 'centre'; known: full, center[@SIDE], "
        "random[@SEED], oracle, default, heatmap:FOLDER, hf:MODEL",
        "cropvlm: cannot start: reader 'ocr:tesserac@768': unknown OCR engine 'tesserac'; "
        "choose one of ['rapidocr', 'rapidocr-spaced', 'tesseract']",
    ]
    assert not (tmp_path / "cli.db").exists()  # no run was opened

    assert main([*args, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "cropvlm.errors.SpecError: unknown policy spec" in err

    folder = write_folder(tmp_path / "docs", good_documents())
    for source, problem in ((str(folder / "scan-named-as.pdf"), "is not a folder"),
                            ("s3://Bad_Bucket/in/", "'Bad_Bucket' is not an S3 bucket name"),
                            ("gs://bucket/in/", "unsupported URI scheme")):
        assert main(["extract", source, "--templates", RECEIPT, "--policy", "full", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("cropvlm: cannot start: source") and problem in err and len(err.splitlines()) == 1
    assert main(["extract", str(folder), "--templates", RECEIPT, "--review-below", "2"]) == 2
    assert capsys.readouterr().err == "cropvlm: cannot start: --review-below: Input should be less than or equal to 1\n"


def test_an_s3_source_that_cannot_be_listed_cannot_start_in_one_line(tmp_path, monkeypatch, capsys, s3_server):
    """A missing bucket, missing credentials or a closed endpoint: one line, exit 2, within
    seconds (a quick client, not the run's retries), and no run opened."""
    cli_env(monkeypatch, tmp_path)
    args = ["--templates", RECEIPT, "--policy", "full", "--no-progress"]
    assert main(["extract", "s3://cropvlm-no-such-bucket/in/", *args]) == 2
    assert capsys.readouterr().err == (
        "cropvlm: cannot start: source s3://cropvlm-no-such-bucket/in/: S3 bucket 'cropvlm-no-such-bucket' "
        f"does not exist at {s3_server} (check the bucket name and AWS_ENDPOINT_URL)\n")

    with monkeypatch.context() as patch:
        patch.delenv("AWS_ACCESS_KEY_ID")
        patch.delenv("AWS_SECRET_ACCESS_KEY")
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no wait on an instance role
        assert main(["extract", "s3://docs/in/", *args]) == 2
    assert capsys.readouterr().err == ("cropvlm: cannot start: source s3://docs/in/: Unable to locate "
                                       "credentials (check the AWS credentials and the bucket's permissions)\n")

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens on port 1
    started = time.monotonic()
    assert main(["extract", "s3://docs/incoming/", *args]) == 2
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err
    assert err.startswith("cropvlm: cannot start: source s3://docs/incoming/ unreachable: Could not connect "
                          'to the endpoint URL: "http://127.0.0.1:1/docs?')
    assert err.endswith("(check AWS_ENDPOINT_URL and the network)\n") and len(err.splitlines()) == 1
    assert not (tmp_path / "cli.db").exists()  # no run was opened

    assert main(["extract", "s3://docs/incoming/", *args, "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "EndpointConnectionError" in err


def test_an_s3_source_that_answers_is_extracted(tmp_path, monkeypatch, capsys, s3_client, s3_bucket):
    cli_env(monkeypatch, tmp_path)
    name, data = next(iter(good_documents().items()))
    s3_client.put_object(Bucket=s3_bucket, Key=f"incoming/{name}", Body=data)
    assert main(["extract", f"s3://{s3_bucket}/incoming/", "--templates", RECEIPT, "--policy", "full",
                 "--no-progress"]) == 0
    assert "1 documents, 1 extracted, 0 skipped, 0 failed" in capsys.readouterr().out


def test_help_gives_the_exit_codes_and_the_options_operators_expect(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["extract", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--database-url URL" in text and "--artifacts-uri URI" in text and "DATABASE_URL" in text
    assert "exit status:\n  0  every document extracted, empty or skipped" in text
    assert "  1  some documents failed" in text and "  2  the run could not start" in text


def test_blank_documents_are_empty_warnings_in_the_database_named_on_the_command_line(
        tmp_path, monkeypatch, capsys, pg_server):
    """--database-url with a password (trust auth ignores it) becomes DATABASE_URL for the run,
    never a flow parameter; blank and cut documents are `empty` and the exit status stays 0."""
    from prefect.client.orchestration import get_client

    from storage.db import upgrade_database

    cli_env(monkeypatch, tmp_path)
    name = pg_server.create()
    url = pg_server.url_for(name).replace("postgres@", "postgres:s3cret@")
    try:
        upgrade_database(url)
        source = write_folder(tmp_path / "blank", blank_documents())
        assert main(["extract", str(source), "--templates", RECEIPT, "--policy", "full", "--no-progress",
                     "--database-url", url, "--artifacts-uri", str(tmp_path / "elsewhere")]) == 0
        out = capsys.readouterr().out
        assert "0 extracted, 0 skipped, 0 failed, 3 empty" in out
        assert out.count("  EMPTY ") == 3 and "cut.pdf: no answer on any page" in out
        engine = create_engine(url)
        with engine.connect() as connection:
            statuses = connection.exec_driver_sql("SELECT uri, status, pages, answers FROM run_documents").all()
            flow_run_id = connection.exec_driver_sql("SELECT flow_run_id FROM extraction_runs").scalar()
        engine.dispose()
    finally:
        pg_server.drop(name)
    assert sorted((Path(uri).name, status, pages, answers) for uri, status, pages, answers in statuses) == [
        ("blank.pdf", "empty", 1, 4), ("blank.png", "empty", 1, 4), ("cut.pdf", "empty", 2, 8)]
    assert os.environ["DATABASE_URL"] == f"sqlite:///{tmp_path / 'cli.db'}"  # set for that run only
    assert not (tmp_path / "cli.db").exists()
    with get_client(sync_client=True) as client:
        parameters = client.read_flow_run(flow_run_id).parameters
    assert parameters["database_url"] is None and "s3cret" not in str(parameters)
    assert parameters["artifacts_uri"] == str(tmp_path / "elsewhere")
