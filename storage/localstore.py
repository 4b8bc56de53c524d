"""Objects as files under a local folder. Writes are atomic (temp file + rename)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from storage.errors import ObjectNotFoundError, StorageError, StoreNotFoundError
from storage.objectstore import ObjectInfo, check_key


def read_file(path: str | os.PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise ObjectNotFoundError(f"file not found: {path}") from exc
    except OSError as exc:  # permissions, a directory, I/O error
        raise StorageError(f"cannot read {path}: {exc}") from exc


class LocalStore:
    """A folder; keys are paths relative to it. Hidden files and folders (.name) are not listed."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def uri(self, key: str) -> str:
        return str(self.root / check_key(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            raise StoreNotFoundError(f"folder does not exist: {self.root}")
        # Walk only the deepest folder the prefix names; filter the rest by string prefix.
        folder, _, _ = prefix.rpartition("/")
        start = self.root / folder if folder else self.root
        if folder:
            check_key(folder)
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            base = Path(dirpath)
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = base / name
                key = path.relative_to(self.root).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    size = path.stat().st_size
                except FileNotFoundError:  # deleted while listing
                    continue
                yield ObjectInfo(uri=str(path), key=key, size=size)

    def read(self, key: str) -> bytes:
        return read_file(self.root / check_key(key))

    def exists(self, key: str) -> bool:
        return (self.root / check_key(key)).is_file()

    def write(self, key: str, data: bytes, content_type: str | None = None) -> str:
        path = self.root / check_key(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Hidden temp name in the same folder: never listed, and os.replace is atomic.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc}") from exc
        return str(path)
