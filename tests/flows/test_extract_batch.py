"""extract_documents (the body of the model task) keeps failures per document."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from cropvlm.render import RenderConfig
from cropvlm.templates import load_template_set
from storage.db import make_engine, make_session_factory
from storage import queries
from tasks import extraction
from tasks.extraction import ExtractJob, extract_documents
from tests.flows.documents import good_documents, write_folder

REPO = Path(__file__).resolve().parents[2]


def make_job(tmp_path, db_url, source, reader="ocr:tesseract@768") -> ExtractJob:
    templates = load_template_set([REPO / "templates/receipt.yaml"])
    with make_session_factory(make_engine(db_url)).begin() as session:
        queries.ensure_template_set(session, templates.content_hash, templates.name, templates.canonical_json())
        run_id = queries.start_run(session, flow_run_id=None, source=str(source), template_set_hash=templates.content_hash,
                                   policy="full", reader=reader, parameters={})
    return ExtractJob(run_id, str(source), templates, "full", reader, RenderConfig(), db_url, str(tmp_path / "artifacts"))


def statuses(db_url) -> dict[str, tuple[str, str | None]]:
    engine = create_engine(db_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT uri, status, error FROM run_documents")).all()
    engine.dispose()
    return {Path(uri).name: (status, error) for uri, status, error in rows}


def test_a_vanished_object_fails_alone(tmp_path, db_url):
    source = write_folder(tmp_path / "docs", good_documents())
    keys = sorted(good_documents()) + ["vanished.pdf"]
    outcome = extract_documents(make_job(tmp_path, db_url, source), keys)
    assert [d.status for d in outcome.documents].count("extracted") == 3
    status, error = statuses(db_url)["vanished.pdf"]
    assert status == "failed" and "cannot read object" in error


def test_a_reader_crash_on_one_document_fails_only_that_document(tmp_path, db_url, monkeypatch):
    source = write_folder(tmp_path / "docs", good_documents())
    job = make_job(tmp_path, db_url, source)
    real_reader = extraction.get_reader(job.reader)
    poisoned_size = None

    class CrashingReader:
        """The real reader, except that it crashes on pages of one size."""

        version = real_reader.version

        def answer(self, requests):
            if any(r.page.size == poisoned_size for r in requests):
                raise RuntimeError("CUDA error: device-side assert triggered")
            return real_reader.answer(requests)

    from cropvlm.render import render_document

    poisoned_size = render_document(good_documents()["scan-named-as.pdf"]).pages[0].size
    monkeypatch.setattr(extraction, "get_reader", lambda spec: CrashingReader())
    outcome = extract_documents(job, sorted(good_documents()))
    result = statuses(db_url)
    assert result["scan-named-as.pdf"][0] == "failed"
    assert "model failure: RuntimeError: CUDA error" in result["scan-named-as.pdf"][1]
    assert sorted(d.status for d in outcome.documents) == ["extracted", "extracted", "failed"]
    engine = create_engine(db_url)
    with engine.connect() as connection:
        answered = connection.execute(text("SELECT DISTINCT document_uri FROM extracted_fields")).scalars().all()
    engine.dispose()
    assert sorted(Path(u).name for u in answered) == sorted(set(good_documents()) - {"scan-named-as.pdf"})


def test_model_busy_time_counts_overlapping_calls_once():
    from flows.extract import _union_seconds

    assert _union_seconds([]) == 0
    assert _union_seconds([(0, 2), (1, 3), (5, 6)]) == 4  # [0,3] and [5,6]
    assert _union_seconds([(5, 6), (0, 10)]) == 10
