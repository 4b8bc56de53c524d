"""One interface for objects in S3 (`s3://bucket/prefix`) and on disk (`./dir`, `/abs`, `file://`).

    store = open_store("s3://scans/2026/")       # or "./scans", "/data/scans", "file:///data/scans"
    for info in store.list("invoices/"):         # recursive, keys relative to the root
        data = store.read(info.key)
    uri = store.write("crops/abc.png", png, content_type="image/png")
    read_uri(uri) == png

Keys are '/'-separated paths relative to the store's root; a key never starts with '/' and
never contains '..', '.' or empty segments. `list(prefix)` matches keys by string prefix,
as S3 does ("inv" matches "invoices/a.pdf" and "inv.pdf"). Order is stable: S3 lists keys
in byte order; a folder lists its files (sorted) before its sorted subfolders. Local
listing skips hidden files and folders (".name"); S3 listing skips only "folder/" markers.
URIs: S3 objects are `s3://bucket/key`; local objects are absolute filesystem paths.
Errors: ObjectNotFoundError (missing object), StoreNotFoundError (missing bucket or
folder), StoreUnavailableError (unreachable), StorageError (anything else: permissions,
credentials, bad key or URI). `probe_store(uri)` raises them before a run, within seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from storage.errors import StorageError


@dataclass(frozen=True)
class ObjectInfo:
    uri: str  # full URI, usable with read_uri
    key: str  # relative to the store's root
    size: int  # bytes


@runtime_checkable
class ObjectStore(Protocol):
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under the root whose key starts with `prefix`, recursively."""
        ...

    def read(self, key: str) -> bytes:
        """The object's bytes; ObjectNotFoundError if missing, StorageError otherwise."""
        ...

    def write(self, key: str, data: bytes, content_type: str | None = None) -> str:
        """Store `data` under `key` (replacing any object there) and return its URI."""
        ...

    def exists(self, key: str) -> bool: ...

    def uri(self, key: str) -> str: ...


def check_key(key: str) -> str:
    """Return `key` if it is a valid relative key, else raise StorageError saying why."""
    if not key:
        raise StorageError("empty object key")
    if key.startswith("/") or "\\" in key:
        raise StorageError(f"object key {key!r} must be relative and use '/' separators")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise StorageError(f"object key {key!r} has an empty, '.' or '..' segment")
    return key


def is_s3_uri(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> ("bucket", "some/key")."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise StorageError(f"S3 URI {uri!r} names no bucket (expected s3://bucket/prefix)")
    return bucket, key


def local_path(uri: str) -> str:
    """The filesystem path of a local URI: a plain path or file:///abs/path."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise StorageError(f"unsupported URI scheme in {uri!r} (use s3://, file:// or a path)")
    if parts.netloc not in ("", "localhost"):
        raise StorageError(f"file URI {uri!r} names a remote host; use file:///absolute/path")
    return unquote(parts.path)


def open_store(uri: str) -> ObjectStore:
    """The store rooted at `uri` (an S3 bucket and optional prefix, or a local folder)."""
    if is_s3_uri(uri):
        from storage.s3store import S3Store  # boto3 is imported only when S3 is used

        bucket, prefix = split_s3_uri(uri)
        return S3Store(bucket, prefix)
    from storage.localstore import LocalStore

    return LocalStore(local_path(uri))


def probe_store(uri: str) -> None:
    """Raise what listing the store at `uri` would, at once: S3 lists at most one key with a
    quick client (few retries, short timeouts), a folder must exist."""
    if is_s3_uri(uri):
        from storage.s3store import S3Store, make_s3_client

        bucket, prefix = split_s3_uri(uri)
        S3Store(bucket, prefix, client=make_s3_client(quick=True)).probe()
        return
    from storage.localstore import LocalStore

    LocalStore(local_path(uri)).probe()


def read_uri(uri: str) -> bytes:
    """Read one object by its full URI (as returned by ObjectStore.write or .uri)."""
    if is_s3_uri(uri):
        from storage.s3store import S3Store

        bucket, key = split_s3_uri(uri)
        return S3Store(bucket, "").read(key)
    from storage.localstore import read_file

    return read_file(local_path(uri))
