"""Whole folders in an object store: policy artifacts and training checkpoints.

A folder is a key prefix; its URI (`s3://bucket/prefix/policies/x` or a local path) opens
as a store of its own with `open_store`, so a policy version's `artifact_uri` is all a
worker needs to fetch it.
"""

from __future__ import annotations

from pathlib import Path

from storage.objectstore import open_store


def upload_folder(store_uri: str, prefix: str, folder: str | Path) -> str:
    """Copy every file under `folder` to `prefix/<relative path>`; returns the folder's URI."""
    store = open_store(store_uri)
    folder = Path(folder)
    prefix = prefix.strip("/")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        store.write(f"{prefix}/{path.relative_to(folder).as_posix()}", path.read_bytes())
    return store.uri(prefix)


def download_folder(folder_uri: str, dest: str | Path) -> Path:
    """Copy every object under `folder_uri` into `dest` (created); returns `dest`."""
    dest = Path(dest)
    store = open_store(folder_uri)
    for info in store.list():
        target = dest / info.key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.read(info.key))
    return dest
