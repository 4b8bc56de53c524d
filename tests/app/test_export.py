"""`cropvlm export` and app/export.py: the document × field table to CSV, Excel and Parquet,
read back with pandas and checked against the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from app.export import export_fields
from cli.main import main
from storage import queries
from storage.db import make_engine, make_session_factory
from storage.queries import AnswerRow

TS_HASH = "ab" * 32
LAST_WEEK = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
# document -> field -> (answer, confidence, needs_review); c.pdf was extracted last week
DOCUMENTS = {
    "s3://b/in/a.pdf": {"company": ("ACME", 0.91, False), "total": ("12.50", 0.31, True)},
    "s3://b/in/b.png": {"company": ("", 0.0, True), "total": ("9.00", 0.8, False)},
    "s3://b/other/c.pdf": {"company": ("Globex", 0.7, False), "total": ("1,024.00", 0.6, False)},
}


def _answer(field: str, answer: str, confidence: float, needs_review: bool, *, page: int = 1, best: bool = True):
    return AnswerRow(page_number=page, field=field, question=f"What is the {field}?", answer_type="text",
                     answer=answer, value=answer or None, confidence=confidence, needs_review=needs_review,
                     is_best=best, page_width=100, page_height=100, policy_valid=True)


@pytest.fixture
def runs(db_url) -> list[int]:
    """Run 1 extracted a.pdf and b.png, run 2 c.pdf (dated last week); b.png also has a
    worse second page, which the table must not show."""
    engine = make_engine(db_url)
    with make_session_factory(engine).begin() as session:
        queries.ensure_template_set(session, TS_HASH, "receipt@v1", {"templates": []})
        run_ids = [queries.start_run(session, flow_run_id=None, source=source, template_set_hash=TS_HASH,
                                     policy="full", reader="ocr:rapidocr@768", parameters={})
                   for source in ("s3://b/in/", "s3://b/other/")]
        for n, (uri, fields) in enumerate(DOCUMENTS.items()):
            document_id = queries.upsert_document(session, sha256=f"{n:064d}", uri=uri, media_type="application/pdf",
                                                  size_bytes=10, page_count=1)
            answers = [_answer(field, *given) for field, given in fields.items()]
            if uri.endswith("b.png"):
                answers.append(_answer("total", "0.00", 0.1, True, page=2, best=False))
            queries.save_extraction(session, run_id=run_ids[uri.endswith("c.pdf")], document_id=document_id,
                                    template_set_hash=TS_HASH, policy="full", reader="ocr:rapidocr@768",
                                    answers=answers)
        session.execute(sa.text("UPDATE answers SET created_at = :t WHERE document_id = "
                                "(SELECT id FROM documents WHERE uri = 's3://b/other/c.pdf')"),
                        {"t": LAST_WEEK.replace(tzinfo=None) if db_url.startswith("sqlite") else LAST_WEEK})
    engine.dispose()
    return run_ids


def read_back(path) -> pd.DataFrame:
    answers = {"company": str, "total": str}  # "12.50" as written, not the number 12.5
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=answers, keep_default_na=False)  # an empty answer stays ""
    if path.suffix == ".xlsx":
        return pd.read_excel(path, sheet_name="fields", dtype=answers)
    return pd.read_parquet(path)


def database_rows(db_url: str, where: str = "1 = 1") -> dict[str, dict[str, tuple]]:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(
            f"SELECT document_uri, field, answer, confidence, needs_review FROM document_fields WHERE {where}")).all()
    engine.dispose()
    table: dict[str, dict[str, tuple]] = {}
    for uri, field, answer, confidence, needs_review in rows:
        table.setdefault(uri, {})[field] = (answer, confidence, bool(needs_review))
    return table


def assert_matches(frame: pd.DataFrame, expected: dict[str, dict[str, tuple]]) -> None:
    assert list(frame.columns) == ["document_uri", "company", "company_confidence", "company_needs_review",
                                   "total", "total_confidence", "total_needs_review", "document_sha256"]
    assert sorted(frame["document_uri"]) == sorted(expected)
    for record in frame.to_dict("records"):
        for field, (answer, confidence, needs_review) in expected[record["document_uri"]].items():
            read = record[field]
            assert ("" if isinstance(read, float) and math.isnan(read) else str(read)) == answer
            assert record[f"{field}_confidence"] == pytest.approx(confidence)
            assert bool(record[f"{field}_needs_review"]) is needs_review


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_a_runs_table_reads_back_as_the_database_has_it(tmp_path, db_url, runs, suffix):
    out = tmp_path / f"results{suffix}"
    export_fields(db_url, out, run_id=runs[0])
    expected = database_rows(db_url, f"run_id = {runs[0]}")
    assert set(expected) == {"s3://b/in/a.pdf", "s3://b/in/b.png"}
    assert expected["s3://b/in/b.png"]["total"] == ("9.00", 0.8, False)  # the best page, not page 2
    assert_matches(read_back(out), expected)


def test_source_prefix_and_date_range_select_documents(tmp_path, db_url, runs):
    everything = export_fields(db_url, tmp_path / "all.parquet")
    assert_matches(everything, DOCUMENTS)
    assert list(export_fields(db_url, tmp_path / "s.csv", uri_prefix="s3://b/other/")["document_uri"]) == [
        "s3://b/other/c.pdf"]
    recent = export_fields(db_url, tmp_path / "r.csv", since=LAST_WEEK + timedelta(days=1))
    assert sorted(recent["document_uri"]) == ["s3://b/in/a.pdf", "s3://b/in/b.png"]
    week = export_fields(db_url, tmp_path / "w.csv", since=LAST_WEEK - timedelta(hours=1),
                         until=LAST_WEEK + timedelta(hours=1))
    assert list(week["document_uri"]) == ["s3://b/other/c.pdf"]
    assert export_fields(db_url, tmp_path / "none.csv", uri_prefix="s3://b/in_").empty  # "_" is no wildcard


def test_the_command_writes_the_file_and_refuses_unknown_formats(tmp_path, db_url, runs, capsys):
    out = tmp_path / "results.xlsx"
    assert main(["export", "--run", str(runs[1]), "--out", str(out), "--database-url", db_url,
                 "--until", LAST_WEEK.date().isoformat()]) == 0  # a bare --until date includes its day
    assert f"wrote {out}: 1 documents, 2 fields" in capsys.readouterr().out
    assert_matches(read_back(out), database_rows(db_url, f"run_id = {runs[1]}"))

    assert main(["export", "--out", str(tmp_path / "results.json"), "--database-url", db_url]) == 2
    assert "unknown output format '.json'; use one of .csv, .xlsx, .parquet" in capsys.readouterr().err
    assert main(["export", "--run", "999", "--out", str(tmp_path / "nothing.csv"), "--database-url", db_url]) == 0
    assert "no documents match" in capsys.readouterr().err
    assert list(pd.read_csv(tmp_path / "nothing.csv").columns) == ["document_uri", "document_sha256"]


def test_a_local_source_selects_by_its_absolute_path(tmp_path, monkeypatch):
    from cli.export import _uri_prefix

    (tmp_path / "in").mkdir()
    monkeypatch.chdir(tmp_path)
    assert _uri_prefix("in") == _uri_prefix(f"file://{tmp_path}/in") == f"{tmp_path}/in/"  # not in2/
    assert _uri_prefix("s3://b/in") == "s3://b/in"  # a key prefix, as S3 lists it
