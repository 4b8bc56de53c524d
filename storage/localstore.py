"""Objects as files under a local folder. Writes are atomic (temp file + rename).

Reads take regular files only, of at most MAX_OBJECT_BYTES, and a key never reads outside
the folder, even through a symlink: a FIFO would hang the run, /dev/zero never ends, and a
link to /etc/passwd would put its first bytes into an error message.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from storage.errors import ObjectNotFoundError, StorageError, StoreNotFoundError
from storage.objectstore import ObjectInfo, check_key


MAX_OBJECT_BYTES = 1 << 30  # 1 GiB: far above any document we render, far below memory


def read_file(path: str | os.PathLike) -> bytes:
    try:
        info = os.stat(path)  # follows links: what would be read
        if not stat.S_ISREG(info.st_mode):
            raise StorageError(f"cannot read {path}: not a regular file (a folder, pipe or device)")
        if info.st_size > MAX_OBJECT_BYTES:
            raise StorageError(f"cannot read {path}: {info.st_size} bytes, more than {MAX_OBJECT_BYTES}")
        with open(path, "rb") as handle:
            data = handle.read(MAX_OBJECT_BYTES + 1)  # a file that grows while read is still bounded
    except FileNotFoundError as exc:
        raise ObjectNotFoundError(f"file not found: {path}") from exc
    except OSError as exc:  # permissions, I/O error
        raise StorageError(f"cannot read {path}: {exc}") from exc
    if len(data) > MAX_OBJECT_BYTES:
        raise StorageError(f"cannot read {path}: more than {MAX_OBJECT_BYTES} bytes")
    return data


class LocalStore:
    """A folder; keys are paths relative to it. Hidden files and folders (.name) are not listed."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def uri(self, key: str) -> str:
        return str(self.root / check_key(key))

    def probe(self) -> None:
        if not self.root.is_dir():
            raise StoreNotFoundError(f"folder does not exist: {self.root}")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self.probe()
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
        path = self.root / check_key(key)
        if not path.resolve().is_relative_to(self.root):
            raise StorageError(f"cannot read {path}: it links outside {self.root}")
        return read_file(path)

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
