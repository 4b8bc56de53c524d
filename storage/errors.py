"""Exception types raised by storage. Each message names the object, bucket, folder or run."""

from __future__ import annotations


class StorageError(Exception):
    """An object store or database operation that failed (network, permissions, bad URI)."""


class DatabaseUnavailableError(StorageError):
    """The database cannot be reached (down, wrong host, refused login): the run cannot start."""


class StoreUnavailableError(StorageError):
    """The object store cannot be reached (refused, timed out, 5xx): an outage, not a bad document."""


class ObjectNotFoundError(StorageError):
    """An object (S3 key or local file) that does not exist, or vanished while being read."""


class StoreNotFoundError(StorageError):
    """The root of a store does not exist: a missing S3 bucket or local folder.

    Separate from ObjectNotFoundError because it is a configuration problem, not a
    missing document: a flow should fail the run, not record one failed document.
    """


class RunNotFoundError(StorageError, LookupError):
    """An extraction run id that is not in the database."""


class AlreadyExtracted(StorageError):
    """save_extraction found the idempotence key taken (a concurrent run got there first).

    Nothing was written; `extraction_id` is the existing row, so the caller can record the
    document as skipped.
    """

    def __init__(self, extraction_id: int, message: str) -> None:
        super().__init__(message)
        self.extraction_id = extraction_id


class PolicyNotFoundError(StorageError, LookupError):
    """A policy version (or training run) that is not in the registry."""


class PolicyStatusError(StorageError, ValueError):
    """A status change the registry refuses, e.g. promoting a rejected version."""
