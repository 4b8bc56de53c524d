"""Extract one batch of documents: read, identify, render, crop-then-answer, persist.

Plain Python (no Prefect) so tests and benchmarks can call it directly; `tasks/extract.py`
wraps it as a task. Failure is per document: a document that cannot be read, rendered or
answered is recorded as failed with its message, and the rest of the batch completes.
Each document's answers are written in one transaction, so none is left half-written.
Limits per document: `document_seconds` for reading and rendering (rendering in a child
process that is killed when late, cropvlm/render_worker.py) and its pixels (RenderConfig);
per batch: pages go to the model once they reach `batch_pixels`, and are freed once answered.

Only the model call (`crop_then_answer`, and its document-by-document retry) runs inside
`model_slot()`: the caller's guard for the device (the Prefect task passes a global
concurrency limit), so reading, rendering and persisting of one batch overlap with the model
work of another.

A batch reads and hashes its documents, then claims them in the database at once
(storage/claims.py) before rendering any: one run at a time does a document's model work, and
a document held by another live run is skipped. The run's lease, heartbeat and interruption
live in app/runs.py, reading a document in app/document_reads.py. Database steps retry
through a short outage.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from app import runs
from app.document_reads import CONTENTS, DocumentRead, read_document
from app.outcomes import BatchOutcome, DocumentOutcome
from app.params import ExtractParams
from app.resources import get_policy, get_reader, get_session_factory, get_store, resolve_policy, resolve_reader
from cropvlm.crops import encode_thumbnail
from cropvlm.errors import DocumentError
from cropvlm.pipeline import FieldResult, PageRef, crop_then_answer
from cropvlm.render_worker import render_within
from cropvlm.templates import TemplateSet
from storage import claims, queries
from storage.claims import ClaimKey
from storage.errors import StorageError, StoreUnavailableError
from storage.retry import retry_database, retry_store

log = logging.getLogger(__name__)

ModelSlot = Callable[[], AbstractContextManager]  # entered around each model call
EMPTY_WARNING = "no answer on any page: blank or unreadable pages?"


@dataclass(frozen=True)
class Models:
    """The policy and reader of a run: specs resolved once, versions every answer records."""

    policy: str  # spec, `promoted` resolved, e.g. "heatmap:/tmp/cropvlm-policies/1a2b"
    policy_version: str
    reader: str  # spec, the promoted answer head resolved, e.g. "ocr:rapidocr@768+head=/tmp/cropvlm-models/3c4d"
    reader_version: str


def resolve_models(params: ExtractParams) -> Models:
    """`promoted` -> the registry's promoted policy, an OCR reader with the promoted answer head
    trained for it; both models loaded (once per worker)."""
    policy = resolve_policy(params.policy, params.database_url)
    reader = resolve_reader(params.reader, params.database_url)
    return Models(policy, get_policy(policy).version, reader, get_reader(reader).version)


@dataclass(frozen=True)
class ExtractJob:
    """Everything a worker needs to extract documents for one run (small, picklable)."""

    run_id: int
    params: ExtractParams  # source (the store root document keys are relative to), render, URLs
    templates: TemplateSet
    models: Models

    def claim_key(self, sha256: str) -> ClaimKey:
        return ClaimKey(sha256, self.templates.content_hash, self.models.policy_version, self.models.reader_version)


@dataclass
class _Pending:
    """A document that rendered and awaits model work."""

    key: str
    uri: str
    claim: ClaimKey
    document_id: int
    pages: list
    started: float

    @property
    def sha256(self) -> str:
        return self.claim.sha256

    @property
    def pixels(self) -> int:
        return sum(page.width * page.height for page in self.pages)


def extract_documents(job: ExtractJob, keys: Sequence[str], *, model_slot: ModelSlot = nullcontext) -> BatchOutcome:
    """Read and hash the batch, claim it in one call, then render the claimed documents; they go
    to the model in groups of at most `batch_pixels` rendered pixels (a group closes on the
    document that reaches it), so a batch never holds all its pages at once."""
    held: dict[str, str] = {}  # sha256 -> uri: the contents this batch holds in CONTENTS
    try:
        return _extract_batch(job, keys, model_slot, held)
    finally:
        CONTENTS.release(job.run_id, held)  # finished or abandoned: a later copy goes by its claim


def _extract_batch(job: ExtractJob, keys: Sequence[str], model_slot: ModelSlot, held: dict[str, str]) -> BatchOutcome:
    store = get_store(job.params.source)
    sessions = get_session_factory(job.params.database_url)
    outcome = BatchOutcome()
    ours: list[DocumentRead] = []
    try:
        read = _read_batch(job, store, sessions, keys, outcome, held)
        if read and not runs.stopping(job.run_id):
            ours = _claim_batch(job, sessions, read, outcome)
        pending: list[_Pending] = []
        for doc in ours:
            if runs.stopping(job.run_id):
                break
            result = _render(job, sessions, doc)
            if isinstance(result, DocumentOutcome):
                _finish(sessions, job.run_id, result, outcome)
                continue
            pending.append(result)
            if sum(doc.pixels for doc in pending) >= job.params.batch_pixels:
                _answer_and_persist(job, sessions, pending, outcome, model_slot)
                pending = []
        if not runs.stopping(job.run_id):
            _answer_and_persist(job, sessions, pending, outcome, model_slot)
            return outcome
    except StoreUnavailableError:  # an outage, retried already: one run-level error, not N failed documents
        runs.stop(job.run_id)  # the run's other batches stop at their next document
        _release(sessions, job.run_id, [doc.claim for doc in ours])  # those done are released already: no-ops
        raise
    # interrupted: no model work starts; the documents go to the next run
    _release(sessions, job.run_id, [doc.claim for doc in ours])
    return outcome


def _answer_and_persist(job, sessions, pending: list[_Pending], outcome: BatchOutcome, model_slot: ModelSlot) -> None:
    for doc, results, error in _answer(job, pending, outcome, model_slot):
        if error is not None:
            done = DocumentOutcome(doc.uri, "failed", error, pages=len(doc.pages), document_id=doc.document_id)
            done.seconds = time.perf_counter() - doc.started
            _record(sessions, job.run_id, done, doc.claim)
        else:
            done = _persist(job, sessions, doc, results)
        outcome.documents.append(done)
        doc.pages.clear()  # answered: its pages are freed now, not when the batch ends


def _read_batch(job, store, sessions, keys, outcome: BatchOutcome, held: dict[str, str]) -> list[DocumentRead]:
    """Read and hash each key; a key that cannot be read, or repeats a content this run holds
    (in this batch or another), is recorded alone. The contents taken are added to `held`."""
    read: list[DocumentRead] = []

    def hold(sha256: str, uri: str) -> str | None:
        holder = CONTENTS.hold(job.run_id, sha256, uri)
        if holder is None:
            held[sha256] = uri
        return holder

    for key in keys:
        if runs.stopping(job.run_id):
            break
        started = time.perf_counter()
        result = read_document(store, key, hold, job.params.document_seconds, job.claim_key)
        result.seconds = time.perf_counter() - started
        if isinstance(result, DocumentRead):
            read.append(result)
        else:
            _finish(sessions, job.run_id, result, outcome)
    return read


def _claim_batch(job, sessions, read: list[DocumentRead], outcome: BatchOutcome) -> list[DocumentRead]:
    """Skip the documents already extracted or claimed by another run; returns those now ours."""

    def claim() -> tuple[set[ClaimKey], dict[ClaimKey, int]]:
        with sessions.begin() as session:
            return claims.claim_unextracted(session, [doc.claim for doc in read], job.run_id, job.params.lease_seconds)

    done, holders = retry_database(claim, what="claim documents")
    skipped = [doc for doc in read if doc.claim in done or doc.claim in holders]
    for doc in skipped:
        held = f"being extracted by run {holders[doc.claim]}" if doc.claim in holders else None
        _finish(sessions, job.run_id, DocumentOutcome(doc.uri, "skipped", held, seconds=doc.seconds,
                                                      document_id=_write_document(sessions, doc, [])), outcome)
    return [doc for doc in read if doc.claim not in done and doc.claim not in holders]


def _render(job, sessions, doc: DocumentRead) -> _Pending | DocumentOutcome:
    """Render a claimed document within what its reading left of document_seconds; the document
    row is written once, with its page count when it rendered."""
    started = time.perf_counter() - doc.seconds  # its own reading counts, not the rest of the batch's
    pages, error = [], None
    try:
        pages = render_within(doc.data, job.params.render(), max(job.params.document_seconds - doc.seconds, 0.001)).pages
    except DocumentError as exc:
        error = str(exc)
    document_id = _write_document(sessions, doc, pages, release_for=job.run_id if error is not None else None)
    doc.data = b""  # rendered: its bytes are freed now, not when the batch ends
    if error is not None:
        return DocumentOutcome(doc.uri, "failed", error, seconds=time.perf_counter() - started, document_id=document_id)
    return _Pending(doc.key, doc.uri, doc.claim, document_id, pages, started)


def _write_document(sessions, doc: DocumentRead, pages: list, release_for: int | None = None) -> int:
    """Upsert the document's row (its page count when it rendered), dropping run `release_for`'s claim."""

    def write() -> int:
        with sessions.begin() as session:
            if release_for is not None:
                claims.release_claim(session, doc.claim, release_for)
            return queries.upsert_document(session, sha256=doc.claim.sha256, uri=doc.uri, media_type=doc.media_type,
                                           size_bytes=len(doc.data), page_count=len(pages) or None)

    return retry_database(write, what="record a document")


def _answer(job: ExtractJob, pending: list[_Pending], outcome: BatchOutcome, model_slot: ModelSlot):
    """Yield (doc, results, error) per pending document, batching all pages in one call.

    If the batched call fails, each document is retried alone so one bad document fails
    alone instead of taking the batch with it.
    """
    if not pending:
        return
    policy, reader = get_policy(job.models.policy), get_reader(job.models.reader)
    fields = job.templates.fields

    def call(docs: Sequence[_Pending]):
        with model_slot():
            started = time.perf_counter()  # after the slot: waiting for the device is not model time
            result = crop_then_answer(_page_refs(docs), fields, policy, reader)
            outcome.model_intervals.append((started, time.perf_counter()))
        return result

    try:
        batch = call(pending)
    except Exception as exc:  # noqa: BLE001 - isolate the culprit below, then re-raise nothing
        log.warning("batched model call failed (%s); retrying document by document", exc)
        batches = []
        for doc in pending:
            try:
                batches.append((doc, call([doc]), None))
            except Exception as single:  # noqa: BLE001 - recorded as this document's failure
                batches.append((doc, None, f"model failure: {type(single).__name__}: {single}"))
        for doc, result, error in batches:
            if result is not None:
                _add_timings(outcome, result, len(doc.pages))
            yield doc, (result.results if result else None), error
        return
    _add_timings(outcome, batch, sum(len(d.pages) for d in pending))
    by_doc: dict[str, list[FieldResult]] = {}
    for result in batch.results:
        by_doc.setdefault(result.doc, []).append(result)
    for doc in pending:
        yield doc, by_doc.get(doc.sha256, []), None


def _persist(job: ExtractJob, sessions, doc: _Pending, results: list[FieldResult]) -> DocumentOutcome:
    artifacts = get_store(job.params.artifacts_uri)
    rows = []
    try:
        for result in results:
            crop_uri = None
            if result.crop is not None:
                thumbnail = encode_thumbnail(result.crop)
                key = f"crops/{hashlib.sha256(thumbnail).hexdigest()}.jpg"
                crop_uri = retry_store(lambda: artifacts.uri(key) if artifacts.exists(key) else artifacts.write(
                    key, thumbnail, "image/jpeg"), what="store a crop thumbnail")
            rows.append(_answer_row(result, crop_uri, job.params.review_below))
    except StoreUnavailableError:
        raise
    except StorageError as exc:
        done = DocumentOutcome(
            doc.uri, "failed", f"cannot store crop thumbnails: {exc}", pages=len(doc.pages), document_id=doc.document_id
        )
        _record(sessions, job.run_id, done, doc.claim)
        return done
    seconds = time.perf_counter() - doc.started
    # No answer on any page (blank pages, a PDF cut short): saved all the same, so the document
    # is not extracted again on every run, but flagged instead of passing for a success.
    status = "extracted" if any(row.answer.strip() for row in rows) else "empty"

    def write() -> DocumentOutcome:
        done = DocumentOutcome(doc.uri, status, None if status == "extracted" else EMPTY_WARNING,
                               pages=len(doc.pages), answers=len(rows), seconds=seconds)
        with sessions.begin() as session:
            try:
                with session.begin_nested():
                    queries.save_extraction(
                        session,
                        run_id=job.run_id,
                        document_id=doc.document_id,
                        template_set_hash=job.templates.content_hash,
                        policy=job.models.policy_version,
                        reader=job.models.reader_version,
                        answers=rows,
                    )
            except queries.AlreadyExtracted:
                done = DocumentOutcome(doc.uri, "skipped", "extracted meanwhile by another run", pages=len(doc.pages))
            claims.release_claim(session, doc.claim, job.run_id)
            queries.record_run_document(
                session, job.run_id, uri=done.uri, document_id=doc.document_id, status=done.status,
                error=done.error, pages=done.pages, answers=done.answers, seconds=done.seconds,
            )
        return done

    return retry_database(write, what="write a document's answers")


def _answer_row(result: FieldResult, crop_uri: str | None, review_below: float) -> queries.AnswerRow:
    box = result.proposal.box if result.crop is not None else None
    threshold = review_below if result.spec.review_below is None else result.spec.review_below
    pixels = result.crop_pixels
    return queries.AnswerRow(
        page_number=result.page_number,
        field=result.spec.field,
        question=result.spec.question,
        answer_type=result.spec.type,
        answer=result.answer.text,
        value=result.answer.value,
        confidence=result.answer.confidence,
        needs_review=not result.answer.text.strip() or result.answer.confidence < threshold,
        is_best=result.is_best,
        crop_x1=box.x1 if box else None,
        crop_y1=box.y1 if box else None,
        crop_x2=box.x2 if box else None,
        crop_y2=box.y2 if box else None,
        crop_px_x1=pixels[0] if pixels else None,
        crop_px_y1=pixels[1] if pixels else None,
        crop_px_x2=pixels[2] if pixels else None,
        crop_px_y2=pixels[3] if pixels else None,
        page_width=result.page_size[0],
        page_height=result.page_size[1],
        crop_uri=crop_uri,
        policy_output=result.proposal.text,
        policy_valid=result.proposal.valid,
        answer_source=result.answer.source or None,
        latency_ms=result.seconds * 1000,
    )


def _page_refs(pending: Sequence[_Pending]) -> list[PageRef]:
    return [PageRef(d.sha256, i + 1, image) for d in pending for i, image in enumerate(d.pages)]


def _add_timings(outcome: BatchOutcome, batch, pages: int) -> None:
    outcome.pages += pages
    outcome.policy_seconds += batch.policy_seconds
    outcome.reader_seconds += batch.reader_seconds


def _record(sessions, run_id: int, done: DocumentOutcome, claim: ClaimKey | None = None) -> None:
    """Record a document that was not extracted, releasing its claim if it had one."""

    def write() -> None:
        with sessions.begin() as session:
            if claim is not None:
                claims.release_claim(session, claim, run_id)
            queries.record_run_document(
                session, run_id, uri=done.uri, document_id=done.document_id, status=done.status,
                error=done.error, pages=done.pages or None, answers=done.answers or None, seconds=done.seconds,
            )

    retry_database(write, what="record a document")


def _finish(sessions, run_id: int, done: DocumentOutcome, outcome: BatchOutcome) -> None:
    _record(sessions, run_id, done)
    outcome.documents.append(done)


def _release(sessions, run_id: int, keys: list[ClaimKey]) -> None:
    def release() -> None:
        with sessions.begin() as session:
            for key in keys:
                claims.release_claim(session, key, run_id)

    retry_database(release, what="release claims")
