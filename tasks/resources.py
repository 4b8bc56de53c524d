"""Per-worker resources, created once per process and reused by every task call.

Models are the expensive part: loading them per task would dominate a run.
"""

from __future__ import annotations

import threading
from functools import lru_cache

from cropvlm.policies.base import Policy
from cropvlm.readers.base import Reader
from cropvlm.specs import build_policy, build_reader
from storage.db import make_engine, make_session_factory
from storage.objectstore import ObjectStore, open_store

_lock = threading.Lock()  # tasks run in threads: build each resource once


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
