"""extract_documents (the body of the model task) keeps failures per document, and holds
the device guard around its model calls only."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app import extract as extraction
from app.extract import ExtractJob, Models, extract_documents
from app.params import ExtractParams
from cropvlm.readers.base import Answer
from cropvlm.templates import load_template_set
from storage.db import make_engine, make_session_factory
from storage import claims, queries
from tests.flows.documents import good_documents, write_folder

NEEDS_TESSERACT = pytest.mark.skipif(shutil.which("tesseract") is None, reason="no tesseract binary")

REPO = Path(__file__).resolve().parents[2]


def make_job(tmp_path, db_url, source, reader="ocr:tesseract@768", policy="full") -> ExtractJob:
    templates = load_template_set([REPO / "templates/receipt.yaml"])
    with make_session_factory(make_engine(db_url)).begin() as session:
        queries.ensure_template_set(session, templates.content_hash, templates.name, templates.canonical_json())
        run_id = queries.start_run(session, flow_run_id=None, source=str(source), template_set_hash=templates.content_hash,
                                   policy="full", reader=reader, parameters={})
    params = ExtractParams(source=str(source), policy=policy, reader=reader, database_url=db_url,
                           artifacts_uri=str(tmp_path / "artifacts"))
    return ExtractJob(run_id, params, templates, Models(policy, policy, reader, reader))


def statuses(db_url) -> dict[str, tuple[str, str | None]]:
    engine = create_engine(db_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT uri, status, error FROM run_documents")).all()
    engine.dispose()
    return {Path(uri).name: (status, error) for uri, status, error in rows}


@NEEDS_TESSERACT  # the reader these tests run with (.ci/run installs it)
def test_a_vanished_object_fails_alone(tmp_path, db_url):
    source = write_folder(tmp_path / "docs", good_documents())
    keys = sorted(good_documents()) + ["vanished.pdf"]
    outcome = extract_documents(make_job(tmp_path, db_url, source), keys)
    assert [d.status for d in outcome.documents].count("extracted") == 3
    status, error = statuses(db_url)["vanished.pdf"]
    assert status == "failed" and "cannot read object" in error


def test_an_unusable_key_fails_alone(tmp_path, db_url, monkeypatch):
    # S3 allows "a//b" and ".." segments; we cannot address them, but the batch goes on.
    source = write_folder(tmp_path / "docs", good_documents())
    monkeypatch.setattr(extraction, "get_reader", lambda spec: MeetingReader(lambda: None))
    keys = sorted(good_documents()) + ["incoming/b//double-slash.tiff", "../outside.pdf"]
    outcome = extract_documents(make_job(tmp_path, db_url, source, reader="slow"), keys)
    assert [d.status for d in outcome.documents].count("extracted") == 3
    failed = {d.uri: d.error for d in outcome.documents if d.status == "failed"}
    assert set(failed) == {"incoming/b//double-slash.tiff", "../outside.pdf"}
    assert all("unusable object key" in error for error in failed.values())


def with_params(job: ExtractJob, **update) -> ExtractJob:
    return dataclasses.replace(job, params=job.params.model_copy(update=update))


@pytest.mark.parametrize("batch_pixels, calls", [(60_000_000, 1), (1, 3)])
def test_a_batch_hands_its_pages_to_the_model_in_groups_under_its_pixel_budget(tmp_path, db_url, monkeypatch,
                                                                               batch_pixels, calls):
    source = write_folder(tmp_path / "docs", good_documents())
    reader = MeetingReader(lambda: None)
    monkeypatch.setattr(extraction, "get_reader", lambda spec: reader)
    job = with_params(make_job(tmp_path, db_url, source, reader="slow"), batch_pixels=batch_pixels)
    outcome = extract_documents(job, sorted(good_documents()))
    assert [d.status for d in outcome.documents] == ["extracted"] * 3
    assert len(reader.calls) == calls


def test_a_document_that_reads_too_long_fails_alone(tmp_path, db_url, monkeypatch):
    source = write_folder(tmp_path / "docs", good_documents())
    store, release = extraction.get_store(str(source)), threading.Event()

    class HangingStore:
        """The folder, except that one object never finishes reading (a stalled network read)."""

        def __getattr__(self, name):
            return getattr(store, name)

        def read(self, key):
            if key == "scan-named-as.pdf":
                release.wait(30)
            return store.read(key)

    monkeypatch.setattr(extraction, "get_store", lambda uri: HangingStore() if uri == str(source) else store)
    monkeypatch.setattr(extraction, "get_reader", lambda spec: MeetingReader(lambda: None))
    job = with_params(make_job(tmp_path, db_url, source, reader="slow"), document_seconds=0.5)
    started = time.perf_counter()
    try:
        outcome = extract_documents(job, sorted(good_documents()))
    finally:
        release.set()  # the abandoned read thread ends
    assert time.perf_counter() - started < 20
    failed = {Path(d.uri).name: d.error for d in outcome.documents if d.status == "failed"}
    assert failed == {"scan-named-as.pdf": "reading took longer than 0.5 s (document_seconds): abandoned"}
    assert [d.status for d in outcome.documents].count("extracted") == 2


@NEEDS_TESSERACT  # the reader these tests run with (.ci/run installs it)
def test_a_reader_crash_on_one_document_fails_only_that_document(tmp_path, db_url, monkeypatch):
    source = write_folder(tmp_path / "docs", good_documents())
    job = make_job(tmp_path, db_url, source)
    real_reader = extraction.get_reader(job.models.reader)
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


class Meeting:
    """Steps of two threads that must be under way at once: each side calls `meet(side)` once
    its step has begun and waits (at most 30 s) for the other, so the steps overlap by
    construction, not by a sleep that is long enough only on an idle machine."""

    def __init__(self, *sides: tuple[str, str]):
        self._barrier = threading.Barrier(len(sides), timeout=30)
        self._waiting = set(sides)
        self._lock = threading.Lock()

    def meet(self, side: tuple[str, str]) -> None:
        with self._lock:
            if side not in self._waiting:  # not a side, or it met already
                return
            self._waiting.discard(side)
        self._barrier.wait()


class MeetingReader:
    """Stands in for a GPU call: runs `during()`, answers every question alike, records when it ran."""

    version = "slow"

    def __init__(self, during):
        self.during = during
        self.calls: list[tuple[str, float, float]] = []  # (thread, start, end)

    def answer(self, requests):
        start = time.perf_counter()
        self.during()
        self.calls.append((threading.current_thread().name, start, time.perf_counter()))
        return [Answer("12.50", "12.50", 0.5) for _ in requests]


class RecordingSlot:
    """A one-device guard (a lock) that records who held it and when."""

    def __init__(self):
        self._lock = threading.Lock()
        self.held: list[tuple[str, float, float]] = []
        self.first_entered = threading.Event()

    @contextmanager
    def __call__(self):
        with self._lock:
            start = time.perf_counter()
            self.first_entered.set()
            try:
                yield
            finally:
                self.held.append((threading.current_thread().name, start, time.perf_counter()))


def overlaps(a: tuple[str, float, float], b: tuple[str, float, float]) -> bool:
    return a[1] < b[2] and b[1] < a[2]


def test_only_model_calls_take_turns_while_other_batches_read_render_and_persist(tmp_path, db_url, monkeypatch):
    docs = {f"a/{name}": data for name, data in good_documents().items()}
    docs["b/invoice.pdf"] = good_documents("invoice")["scan-named-as.pdf"]
    source = write_folder(tmp_path / "docs", docs)
    job = make_job(tmp_path, db_url, source, reader="slow", policy="center@50")  # crops: thumbnails
    # B renders during A's model call, and A persists during B's model call
    meetings = [Meeting(("model", "A"), ("render", "B")), Meeting(("persist", "A"), ("model", "B"))]

    def meet(what):
        for meeting in meetings:
            meeting.meet((what, threading.current_thread().name))

    reader, slot = MeetingReader(lambda: meet("model")), RecordingSlot()
    monkeypatch.setattr(extraction, "get_reader", lambda spec: reader)
    spans: list[tuple[str, str, float, float]] = []  # (what, thread, start, end)

    def timed(what, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                meet(what)
                return function(*args, **kwargs)
            finally:
                spans.append((what, threading.current_thread().name, start, time.perf_counter()))
        return wrapper

    monkeypatch.setattr(extraction, "render_within", timed("render", extraction.render_within))
    monkeypatch.setattr(extraction, "_persist", timed("persist", extraction._persist))
    outcomes = {}

    def run(name, keys):
        outcomes[name] = extract_documents(job, keys, model_slot=slot)

    first = threading.Thread(target=run, name="A", args=("A", sorted(k for k in docs if k.startswith("a/"))))
    second = threading.Thread(target=run, name="B", args=("B", ["b/invoice.pdf"]))
    first.start()
    assert slot.first_entered.wait(30)  # B starts while A is on the device
    second.start()
    first.join(60)
    second.join(60)

    assert [d.status for d in outcomes["A"].documents] == ["extracted"] * 3
    assert [d.status for d in outcomes["B"].documents] == ["extracted"]
    # the model calls never overlap, and each ran inside its own batch's slot
    calls = sorted(reader.calls, key=lambda c: c[1])
    assert [c[0] for c in calls] == ["A", "B"]
    assert calls[0][2] <= calls[1][1]
    for name, start, end in calls:
        assert any(h[0] == name and h[1] <= start and end <= h[2] for h in slot.held)
    for name, outcome in outcomes.items():
        assert all(any(h[0] == name and h[1] <= s and e <= h[2] for h in slot.held)
                   for s, e in outcome.model_intervals)
    # ...while the other batch rendered (B during A's call) and persisted (A during B's call)
    model = {name: (name, start, end) for name, start, end in calls}
    assert any(overlaps((t, s, e), model["A"]) for what, t, s, e in spans if what == "render" and t == "B")
    assert any(overlaps((t, s, e), model["B"]) for what, t, s, e in spans if what == "persist" and t == "A")


def test_each_document_row_is_written_once_with_its_page_count(tmp_path, db_url, monkeypatch):
    source = write_folder(tmp_path / "docs", good_documents())
    job = make_job(tmp_path, db_url, source, reader="slow")
    monkeypatch.setattr(extraction, "get_reader", lambda spec: MeetingReader(lambda: None))
    written: list[tuple[str, int | None]] = []
    real = queries.upsert_document

    def counted(session, **row):
        written.append((Path(row["uri"]).name, row["page_count"]))
        return real(session, **row)

    monkeypatch.setattr(queries, "upsert_document", counted)
    first = extract_documents(job, sorted(good_documents()))
    again = extract_documents(job, sorted(good_documents()))  # already extracted: skipped
    assert [d.status for d in first.documents] == ["extracted"] * 3
    assert [d.status for d in again.documents] == ["skipped"] * 3
    names = [Path(key).name for key in sorted(good_documents())]
    assert written == [(name, 1) for name in names] + [(name, None) for name in names]  # a skip keeps the count
    engine = create_engine(db_url)
    with engine.connect() as connection:
        pages = dict(connection.execute(text("SELECT uri, page_count FROM documents")).all())
    engine.dispose()
    assert {Path(uri).name: count for uri, count in pages.items()} == {name: 1 for name in good_documents()}


def test_needs_review_follows_the_templates_threshold_then_the_runs(tmp_path, db_url, monkeypatch):
    source = write_folder(tmp_path / "docs", {"a.png": next(iter(good_documents().values()))})
    template = tmp_path / "receipt.yaml"
    template.write_text((REPO / "templates/receipt.yaml").read_text().replace(
        "    type: amount\n", "    type: amount\n    review_below: 0.8\n"))
    job = make_job(tmp_path, db_url, source)
    job = ExtractJob(job.run_id, job.params.model_copy(update={"review_below": 0.5}),
                     load_template_set([template]), job.models)
    assert job.templates.content_hash == load_template_set([REPO / "templates/receipt.yaml"]).content_hash
    given = {"company": ("ACME", 0.4), "date": ("", 0.99), "address": ("1 Main St", 0.7), "total": ("9.00", 0.7)}

    class FixedReader:
        version = "fixed"

        def answer(self, requests):
            return [Answer(given[r.spec.field][0], None, given[r.spec.field][1]) for r in requests]

    monkeypatch.setattr(extraction, "get_reader", lambda spec: FixedReader())
    extract_documents(job, ["a.png"])
    engine = create_engine(db_url)
    with engine.connect() as connection:
        flags = dict(connection.execute(text("SELECT field, needs_review FROM document_fields")).all())
    engine.dispose()
    # company below the run's 0.5, date empty, total below its template's 0.8; address passes
    assert {field: bool(flag) for field, flag in flags.items()} == {
        "company": True, "date": True, "address": False, "total": True}


def test_a_document_claimed_by_another_live_run_is_skipped_without_model_work(tmp_path, db_url, monkeypatch):
    source = write_folder(tmp_path / "docs", good_documents())
    monkeypatch.setattr(extraction, "get_reader", lambda spec: MeetingReader(lambda: None))
    other, job = make_job(tmp_path, db_url, source, reader="slow"), make_job(tmp_path, db_url, source, reader="slow")
    held = sorted(good_documents())[0]
    with make_session_factory(make_engine(db_url)).begin() as session:
        key = job.claim_key(hashlib.sha256(good_documents()[held]).hexdigest())
        assert claims.claim_document(session, key, other.run_id, lease_seconds=60) is None

    outcome = extract_documents(job, sorted(good_documents()))
    assert {Path(d.uri).name: (d.status, d.error) for d in outcome.documents}[held] == (
        "skipped", f"being extracted by run {other.run_id}")
    assert [d.status for d in outcome.documents].count("extracted") == 2
    assert outcome.pages == 2  # the model saw the other two documents' pages only
    engine = create_engine(db_url)
    with engine.connect() as connection:
        holders = connection.execute(text("SELECT run_id FROM document_claims")).scalars().all()
    engine.dispose()
    assert holders == [other.run_id]  # ours were released when the answers were written


def test_a_batch_claims_the_documents_it_could_read_in_one_call(tmp_path, db_url, monkeypatch):
    source = write_folder(tmp_path / "docs", good_documents())
    monkeypatch.setattr(extraction, "get_reader", lambda spec: MeetingReader(lambda: None))
    calls, real = [], claims.claim_documents

    def counted(session, keys, run_id, lease_seconds):
        calls.append(sorted(key.sha256 for key in keys))
        return real(session, keys, run_id, lease_seconds)

    monkeypatch.setattr(claims, "claim_documents", counted)
    job = make_job(tmp_path, db_url, source, reader="slow")
    outcome = extract_documents(job, sorted(good_documents()) + ["vanished.pdf"])
    assert calls == [sorted(hashlib.sha256(data).hexdigest() for data in good_documents().values())]
    assert sorted(d.status for d in outcome.documents) == ["extracted"] * 3 + ["failed"]  # the vanished one alone
    extract_documents(job, sorted(good_documents()))
    assert calls[1:] == [[]]  # extracted already: nothing to claim


def test_a_copy_in_another_batch_of_the_run_is_not_worked_on_twice(tmp_path, db_url, monkeypatch):
    name, data = next(iter(good_documents().items()))
    source = write_folder(tmp_path / "docs", {f"a/{name}": data, f"b/{name}": data, f"c/{name}": data})
    job = make_job(tmp_path, db_url, source, reader="slow")
    b_read = threading.Event()
    reader = MeetingReader(lambda: b_read.wait(30))  # A stays on the device until B has read its copy
    monkeypatch.setattr(extraction, "get_reader", lambda spec: reader)
    outcomes = {}
    first = threading.Thread(target=lambda: outcomes.update(A=extract_documents(job, [f"a/{name}"])), name="A")
    first.start()
    while not reader.calls and not extraction.CONTENTS:  # A holds the content before B reads
        time.sleep(0.01)
    outcomes["B"] = extract_documents(job, [f"b/{name}"])
    b_read.set()
    first.join(60)
    outcomes["C"] = extract_documents(job, [f"c/{name}"])  # after A finished: by its claim

    assert [d.status for d in outcomes["A"].documents] == ["extracted"]
    (b,) = outcomes["B"].documents
    assert b.status == "skipped" and b.error == f"same content as {source / 'a' / name}"
    assert [d.status for d in outcomes["C"].documents] == ["skipped"]
    assert len(reader.calls) == 1  # the model worked on the content once
    assert len(extraction.CONTENTS) == 0  # nothing held once the batches ended
