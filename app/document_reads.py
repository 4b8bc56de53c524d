"""Reading a batch's documents: each key read within its time limit and hashed, so a read
that fails, hangs or repeats a content is that document's outcome alone (app/extract.py).

A content is worked on once per run: `CONTENTS` holds, per run, the contents its batches in
this process have read and not finished, so a copy under another key in a concurrent batch is
skipped rather than claimed again (a claim already ours is ours again, by design: a retried
batch takes its own claims back). Once finished, a copy is skipped as already extracted."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from app.outcomes import DocumentOutcome
from cropvlm.errors import DocumentError
from cropvlm.render import sniff_media_type
from cropvlm.render_worker import DocumentTimeoutError
from storage.claims import ClaimKey
from storage.errors import StorageError, StoreUnavailableError
from storage.retry import retry_store


@dataclass
class DocumentRead:
    """A document read and hashed, awaiting its claim."""

    key: str
    uri: str
    data: bytes
    claim: ClaimKey
    media_type: str
    seconds: float  # reading it: counts against document_seconds and in its outcome


class ContentsInFlight:
    """Per run, the contents being worked on in this process: sha256 -> the uri that holds it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[int, str], str] = {}

    def hold(self, run_id: int, sha256: str, uri: str) -> str | None:
        """Hold the content for `uri`; returns the other uri that holds it, if one does."""
        with self._lock:
            holder = self._held.setdefault((run_id, sha256), uri)
        return None if holder == uri else holder

    def release(self, run_id: int, held: dict[str, str]) -> None:
        """Drop the holds of `held` (sha256 -> uri), those still held by that uri."""
        with self._lock:
            for sha256, uri in held.items():
                if self._held.get((run_id, sha256)) == uri:
                    del self._held[(run_id, sha256)]

    def __len__(self) -> int:
        return len(self._held)


CONTENTS = ContentsInFlight()


def read_document(store, key: str, hold: Callable[[str, str], str | None], seconds: float,
                  claim_key: Callable[[str], ClaimKey]) -> DocumentRead | DocumentOutcome:
    """Read and hash one key within `seconds`; what fails (or repeats a content that
    `hold(sha256, uri)` says another uri holds) is this document's outcome, never the batch's."""
    try:
        uri = store.uri(key)
    except StorageError as exc:  # a key S3 allows but we cannot address ("a//b", "../x"): this document only
        return DocumentOutcome(key, "failed", f"unusable object key: {exc}")
    try:
        data = within(lambda: retry_store(lambda: store.read(key), what=f"read {uri}"), seconds)
    except StoreUnavailableError:
        raise
    except StorageError as exc:
        return DocumentOutcome(uri, "failed", f"cannot read object: {exc}")
    except DocumentTimeoutError as exc:
        return DocumentOutcome(uri, "failed", str(exc))
    sha256 = hashlib.sha256(data).hexdigest()
    holder = hold(sha256, uri)
    if holder is not None:
        return DocumentOutcome(uri, "skipped", f"same content as {holder}")
    try:
        media_type = sniff_media_type(data)
    except DocumentError:
        media_type = "application/octet-stream"
    return DocumentRead(key, uri, data, claim_key(sha256), media_type, 0.0)


def within(read: Callable[[], bytes], seconds: float) -> bytes:
    """`read()` in a thread, waited for `seconds`. A read that hangs fails its document; the
    thread cannot be killed: it ends when the store's own timeouts end the read, its bytes dropped."""
    result: list = []

    def call() -> None:
        try:
            result.append(read())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, raised there
            result.append(exc)

    thread = threading.Thread(target=call, name="read", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise DocumentTimeoutError(f"reading took longer than {seconds:g} s (document_seconds): abandoned")
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]
