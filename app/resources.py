"""Per-worker resources, created once per process and reused by every task call: models by
spec string (the registry's promoted ones fetched once), session factories by database URL,
object stores by URI.

Models are the expensive part: loading them per task would dominate a run.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

from app.params import PROMOTED
from cropvlm.policies.base import Policy
from cropvlm.readers.base import Reader
from cropvlm.specs import BUNDLED_HEAD_NAME, DEFAULT_POLICY, build_policy, build_reader, parse_ocr_spec
from storage.db import make_engine, make_session_factory
from storage.objectstore import ObjectStore, open_store

_lock = threading.Lock()  # tasks run in threads: build each resource once


def resolve_policy(spec: str, database_url: str) -> str:
    """`promoted` -> the registry's promoted version, fetched once into a local cache
    (`heatmap:<folder>`); with none promoted, DEFAULT_POLICY. Other specs as is.

    Not the bundled `default` policy when nothing is promoted: at the default reader's
    budget it measured below no crop (docs/learning.md, "Retraining"), so it must win a promotion
    (`cropvlm policies promote`, or the retrain flow) before extraction uses it."""
    if spec.strip() != PROMOTED:
        return spec
    from storage import registry

    with get_session_factory(database_url).begin() as session:
        current = registry.promoted(session)
    if current is None:
        return DEFAULT_POLICY
    return f"heatmap:{_fetch(current.version, current.artifact_uri, 'policy.onnx')}"


def resolve_reader(spec: str, database_url: str) -> str:
    """An OCR reader spec without a head of its own choosing (`ocr:ENGINE@BUDGET`, or with the
    shipped `+head=default`) gets the registry's promoted answer head when that head was
    trained for this very engine and budget (`...+head=<local folder>`). `+head=FOLDER`,
    `+head=none` and specs no promoted head was trained for stay as they are."""
    from storage import registry

    ocr = parse_ocr_spec(spec)
    if ocr is None or ocr.head not in (None, BUNDLED_HEAD_NAME):
        return spec
    with get_session_factory(database_url).begin() as session:
        head = registry.promoted(session, role="answer_head")
    if head is None or head.reader != ocr.base:
        return spec
    return f"{ocr.base}+head={fetch_head(head.version, head.artifact_uri)}"


def fetch_head(version: str, artifact_uri: str) -> Path:
    """A registered answer head's folder, downloaded once per worker."""
    return _fetch(version, artifact_uri, "config.json")


def _fetch(version: str, artifact_uri: str, marker: str) -> Path:
    """The artifact folder of a registered version in a local cache keyed by its version."""
    from storage.folders import download_folder

    folder = Path(tempfile.gettempdir()) / "cropvlm-models" / hashlib.sha256(version.encode()).hexdigest()[:16]
    with _lock:
        if not (folder / marker).is_file():
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=folder.parent))  # complete before it is visible
            download_folder(artifact_uri, staging)
            shutil.rmtree(folder, ignore_errors=True)
            staging.replace(folder)
    return folder


def get_policy(spec: str) -> Policy:
    with _lock:
        return _policy(spec)


def get_reader(spec: str) -> Reader:
    with _lock:
        return _reader(spec)


def get_session_factory(database_url: str):
    with _lock:
        return _session_factory(database_url)


def get_store(uri: str) -> ObjectStore:
    with _lock:
        return _store(uri)


@lru_cache(maxsize=8)
def _policy(spec: str) -> Policy:
    return build_policy(spec)


@lru_cache(maxsize=8)
def _reader(spec: str) -> Reader:
    return build_reader(spec)


@lru_cache(maxsize=4)
def _session_factory(database_url: str):
    return make_session_factory(make_engine(database_url))


@lru_cache(maxsize=16)
def _store(uri: str) -> ObjectStore:
    return open_store(uri)
