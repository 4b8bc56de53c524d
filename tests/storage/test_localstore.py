"""Local folders through the ObjectStore interface: paths, file:// URIs, hidden files."""

from __future__ import annotations

import pytest

from storage.errors import ObjectNotFoundError, StorageError, StoreNotFoundError
from storage.localstore import LocalStore
from storage.objectstore import ObjectInfo, ObjectStore, open_store, read_uri


def test_write_read_exists_and_uri(tmp_path):
    store = open_store(str(tmp_path / "root"))
    assert isinstance(store, ObjectStore)
    uri = store.write("a/b/page.png", b"png", content_type="image/png")
    assert uri == str(tmp_path / "root" / "a" / "b" / "page.png") == store.uri("a/b/page.png")
    assert store.read("a/b/page.png") == b"png"
    assert read_uri(uri) == b"png"
    assert store.exists("a/b/page.png")
    assert not store.exists("a/b/other.png")
    store.write("a/b/page.png", b"new")  # overwrite
    assert store.read("a/b/page.png") == b"new"


def test_list_is_recursive_sorted_and_skips_hidden(tmp_path):
    for rel in [
        "z.pdf",
        "a/2.pdf",
        "a/1.pdf",
        "a/deep/x.pdf",
        ".hidden",
        "a/.DS_Store",
        ".git/obj",
    ]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * len(rel))
    store = LocalStore(tmp_path)
    infos = list(store.list())
    assert [i.key for i in infos] == ["z.pdf", "a/1.pdf", "a/2.pdf", "a/deep/x.pdf"]
    assert infos[1] == ObjectInfo(uri=str(tmp_path / "a" / "1.pdf"), key="a/1.pdf", size=7)
    assert [i.key for i in store.list("a/")] == ["a/1.pdf", "a/2.pdf", "a/deep/x.pdf"]
    assert [i.key for i in store.list("a/d")] == ["a/deep/x.pdf"]
    assert list(store.list("nothing/")) == []


def test_relative_and_file_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    open_store("./docs").write("x.txt", b"1")
    assert open_store(f"file://{tmp_path}/docs").read("x.txt") == b"1"
    assert read_uri(f"file://{tmp_path}/docs/x.txt") == b"1"
    assert read_uri("docs/x.txt") == b"1"
    with pytest.raises(StorageError, match="remote host"):
        open_store("file://server/share")
    with pytest.raises(StorageError, match="unsupported URI scheme"):
        open_store("gs://bucket/x")


def test_missing_objects_and_folders(tmp_path):
    store = LocalStore(tmp_path)
    with pytest.raises(ObjectNotFoundError, match="missing.pdf"):
        store.read("missing.pdf")
    with pytest.raises(ObjectNotFoundError):
        read_uri(str(tmp_path / "missing.pdf"))
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        list(LocalStore(tmp_path / "nope").list())


@pytest.mark.parametrize("key", ["", "/abs", "../up", "a/../b", "a//b", "./a"])
def test_bad_keys_are_rejected(tmp_path, key):
    with pytest.raises(StorageError):
        LocalStore(tmp_path).write(key, b"x")


def test_reads_stay_inside_the_folder_and_take_regular_files_only(tmp_path, monkeypatch):
    import os

    import storage.localstore as localstore

    root = tmp_path / "root"
    store = open_store(str(root))
    store.write("inside.pdf", b"%PDF-1.4 inside")
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0")
    (root / "escape.pdf").symlink_to(secret)
    (root / "alias.pdf").symlink_to(root / "inside.pdf")  # a link that stays inside is fine
    os.mkfifo(root / "pipe.pdf")  # opening it would block the run forever
    assert store.read("alias.pdf") == b"%PDF-1.4 inside"
    with pytest.raises(StorageError, match="links outside") as outside:
        store.read("escape.pdf")
    assert "root:x" not in str(outside.value)
    with pytest.raises(StorageError, match="not a regular file"):
        store.read("pipe.pdf")
    monkeypatch.setattr(localstore, "MAX_OBJECT_BYTES", 4)
    with pytest.raises(StorageError, match="more than 4"):
        store.read("inside.pdf")
