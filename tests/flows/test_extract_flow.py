"""The extract flow end to end on real parts: files or a real S3 server, SQLite and
PostgreSQL, the offline OCR reader, Prefect's API."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from flows.extract import extract
from storage.objectstore import open_store
from tests.flows.documents import bad_documents, good_documents, write_folder

REPO = Path(__file__).resolve().parents[2]
RECEIPT = str(REPO / "templates/receipt.yaml")
READER = "ocr:rapidocr@768"


def query(db_url: str, sql: str, **params) -> list:
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).all()
    finally:
        engine.dispose()


def run(source, db_url, artifacts, **overrides):
    parameters = dict(source=str(source), templates=[RECEIPT], policy="center@60", reader=READER,
                      database_url=db_url, artifacts_uri=str(artifacts), batch_documents=3)
    parameters.update(overrides)
    return extract(**parameters)


@pytest.mark.slow
def test_extract_local_folder_lands_answers_provenance_and_failures(tmp_path, db_url):
    source = write_folder(tmp_path / "docs", {**good_documents(), **bad_documents()})
    summary = run(source, db_url, tmp_path / "artifacts")

    assert summary["documents_total"] == 10
    assert (summary["documents_extracted"], summary["documents_failed"]) == (3, 7)
    assert summary["status"] == "completed_with_failures"

    rows = query(db_url, "SELECT document_uri, field, answer, confidence, page_number, crop_x1, crop_y1, "
                 "crop_x2, crop_y2, policy, reader, extracted_at, crop_uri FROM extracted_fields")
    assert len(rows) == 3 * 4
    assert {r.field for r in rows} == {"company", "date", "address", "total"}
    assert {r.policy for r in rows} == {"center@60"} and {r.reader for r in rows} == {READER}
    assert all((r.crop_x1, r.crop_y1, r.crop_x2, r.crop_y2) == (20, 20, 80, 80) for r in rows)
    assert all(0 <= r.confidence <= 1 and r.page_number == 1 and r.extracted_at for r in rows)
    assert all(Path(r.document_uri).name in good_documents() for r in rows)
    thumbnails = {r.crop_uri for r in rows}
    assert all(Path(uri).exists() and Path(uri).stat().st_size > 0 for uri in thumbnails)

    failures = dict(query(db_url, "SELECT uri, error FROM run_documents WHERE status = 'failed'"))
    by_name = {Path(uri).name: error for uri, error in failures.items()}
    assert "corrupt PDF" in by_name["corrupt.pdf"] and "corrupt PDF" in by_name["truncated.pdf"]
    assert "encrypted" in by_name["encrypted.pdf"] and "empty file" in by_name["empty.pdf"]
    assert "no pages" in by_name["zero-pages.pdf"] and "unsupported file type" in by_name["notes.txt"]
    assert "over the limit" in by_name["bomb.png"] or "decompression bomb" in by_name["bomb.png"]
    # no partial answers for any failed document
    assert query(db_url, "SELECT count(*) FROM answers a JOIN run_documents r ON r.document_id = a.document_id "
                         "WHERE r.status = 'failed'")[0][0] == 0


@pytest.mark.slow
def test_rerun_is_idempotent_and_a_changed_template_writes_new_rows(tmp_path, db_url):
    source = write_folder(tmp_path / "docs", good_documents())
    first = run(source, db_url, tmp_path / "artifacts")
    assert first["documents_extracted"] == 3

    again = run(source, db_url, tmp_path / "artifacts")
    assert (again["documents_skipped"], again["documents_extracted"], again["answers_written"]) == (3, 0, 0)
    assert again["policy_seconds"] == 0 and again["reader_seconds"] == 0  # no model work at all
    assert query(db_url, "SELECT count(*) FROM answers")[0][0] == 12

    edited = tmp_path / "receipt-v2.yaml"
    edited.write_text(Path(RECEIPT).read_text().replace("version: 1", "version: 2"))
    changed = run(source, db_url, tmp_path / "artifacts", templates=[str(edited)])
    assert changed["documents_extracted"] == 3
    assert query(db_url, "SELECT count(*) FROM answers")[0][0] == 24
    assert query(db_url, "SELECT count(DISTINCT template_set) FROM extracted_fields")[0][0] == 2


@pytest.mark.slow
def test_extract_from_s3_with_thumbnails_in_s3(tmp_path, s3_bucket):
    store = open_store(f"s3://{s3_bucket}/incoming")
    for name, data in {**good_documents(), "bad/corrupt.pdf": bad_documents()["bad/corrupt.pdf"]}.items():
        store.write(name, data)
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    summary = run(f"s3://{s3_bucket}/incoming", db_url, f"s3://{s3_bucket}/artifacts")
    assert (summary["documents_extracted"], summary["documents_failed"]) == (3, 1)
    rows = query(db_url, "SELECT document_uri, crop_uri FROM extracted_fields")
    assert len(rows) == 12
    assert all(r.document_uri.startswith(f"s3://{s3_bucket}/incoming/") for r in rows)
    artifacts = open_store(f"s3://{s3_bucket}/artifacts")
    keys = {info.key for info in artifacts.list()}
    assert {r.crop_uri.split("/artifacts/")[1] for r in rows} <= keys


def test_a_bad_template_fails_the_run_before_any_work(tmp_path, db_url):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nversion: 1\nfields:\n  - {field: total, question: q, type: money}\n")
    source = write_folder(tmp_path / "docs", good_documents())
    from cropvlm.errors import TemplateError

    with pytest.raises(TemplateError, match="broken.yaml: field 'total': 'type' must be one of"):
        run(source, db_url, tmp_path / "artifacts", templates=[str(broken)])


@pytest.mark.slow
def test_multi_page_documents_keep_every_candidate_and_mark_one_best_page(tmp_path, db_url):
    from cropvlm.synthetic import generate_document

    docs = {f"two-pages.{fmt}": generate_document("invoice", 11, fmt).data for fmt in ("pdf", "tiff")}
    source = write_folder(tmp_path / "docs", docs)
    summary = run(source, db_url, tmp_path / "artifacts", templates=[str(REPO / "templates/invoice.yaml")],
                  policy="full")
    assert (summary["documents_extracted"], summary["pages_processed"]) == (2, 4)
    rows = query(db_url, "SELECT document_uri, field, page_number, is_best, confidence, crop_x1 FROM extracted_fields")
    assert len(rows) == 2 * 2 * 4  # documents x pages x fields
    assert all(r.crop_x1 is None for r in rows)  # the full-page policy crops nothing
    for uri in {r.document_uri for r in rows}:
        for field in ("invoice_number", "invoice_date", "total_amount", "vendor"):
            candidates = [r for r in rows if r.document_uri == uri and r.field == field]
            assert sorted(r.page_number for r in candidates) == [1, 2]
            best = [r for r in candidates if r.is_best]
            assert len(best) == 1 and best[0].confidence == max(r.confidence for r in candidates)
    best_rows = query(db_url, "SELECT document_uri, field FROM document_fields")
    assert len(best_rows) == 2 * 4


@pytest.mark.slow
@pytest.mark.parametrize("gpu_limit", [None, "never-created-gpu-limit"])
def test_runs_without_a_gpu_limit_or_with_one_never_created(tmp_path, gpu_limit):
    source = write_folder(tmp_path / "docs", good_documents())
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    summary = run(source, db_url, tmp_path / "artifacts", batch_documents=1, gpu_limit=gpu_limit)
    assert (summary["documents_extracted"], summary["documents_failed"]) == (3, 0)
    assert summary["parameters"]["gpu_limit"] is None  # no such limit: no guard, said once in the log


@pytest.mark.slow
def test_model_calls_take_turns_on_an_existing_gpu_limit(tmp_path, monkeypatch):
    """Three one-document batches on two workers: their model calls hold the global limit's
    only slot in turn (each call made 0.3 s longer, so any overlap would show)."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from app import extract as extraction

    calls: list[tuple[float, float]] = []
    real = extraction.crop_then_answer

    def slow_crop_then_answer(*args, **kwargs):
        start = time.perf_counter()
        time.sleep(0.3)
        try:
            return real(*args, **kwargs)
        finally:
            calls.append((start, time.perf_counter()))

    monkeypatch.setattr(extraction, "crop_then_answer", slow_crop_then_answer)
    name = "cropvlm-test-gpu"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        try:
            source = write_folder(tmp_path / "docs", good_documents())
            summary = run(source, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "artifacts",
                          batch_documents=1, gpu_limit=name)
            limit = client.read_global_concurrency_limit_by_name(name)
        finally:
            client.delete_global_concurrency_limit_by_name(name)
    assert summary["documents_extracted"] == 3 and summary["parameters"]["gpu_limit"] == name
    calls.sort()
    assert len(calls) == 3 and all(end <= start for (_, end), (start, _) in zip(calls, calls[1:]))
    assert limit.active_slots == 0  # every slot given back


def test_the_model_slot_of_a_missing_limit_lets_the_call_through():
    """A limit deleted mid-run: Prefect (strict=False) warns and neither blocks nor raises."""
    from tasks.device import model_slot

    entered = []
    with model_slot("never-created-gpu-limit")():
        entered.append(1)
    with model_slot(None)():
        entered.append(2)
    assert entered == [1, 2]


@pytest.mark.slow
def test_extraction_uses_the_promoted_policy_and_records_its_version(tmp_path, db_url):
    """`policy="promoted"` (the default): `full` while nothing is promoted; once a version is
    promoted, its artifacts are fetched from the store and every answer names it."""
    import torch

    from cropvlm.heatmap.geometry import Geometry
    from cropvlm.heatmap.network import HeatmapNet
    from cropvlm.heatmap.onnx_policy import HeatmapPolicy
    from cropvlm.heatmap.trainable import TrainableHeatmapPolicy
    from storage import registry
    from storage.folders import upload_folder
    from app.resources import get_session_factory

    source = write_folder(tmp_path / "docs", dict(list(good_documents().items())[:1]))
    first = run(source, db_url, tmp_path / "artifacts", policy="promoted")
    assert query(db_url, "SELECT DISTINCT policy FROM extracted_fields") == [("full",)]

    torch.manual_seed(0)
    geometry = Geometry(input_size=128, size_bins=6, min_side=0.1)
    folder = TrainableHeatmapPolicy(HeatmapNet(size_bins=6, width=16, embed=16), geometry, name="t").save(tmp_path / "p")
    version = HeatmapPolicy(folder).version
    uri = upload_folder(str(tmp_path / "artifacts"), "policies/t", folder)
    with get_session_factory(db_url).begin() as session:
        registry.register_candidate(session, version=version, kind="heatmap", artifact_uri=uri, config={})
        registry.promote(session, version)
    second = run(source, db_url, tmp_path / "artifacts", policy="promoted")
    import inspect

    assert inspect.signature(extract.fn).parameters["policy"].default == "promoted"
    assert second["documents_extracted"] == 1 and first["documents_extracted"] == 1
    rows = query(db_url, "SELECT policy, crop_x1 FROM extracted_fields WHERE run_id = :r", r=second["id"])
    assert len(rows) == 4 and {r.policy for r in rows} == {version}
