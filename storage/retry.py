"""Retry one database transaction or object-store call through a short outage (a restart, a
failover, a dropped connection), then give up with one DatabaseUnavailableError or
StoreUnavailableError.

    run_id = retry_database(lambda: start(...), what="open the run")
    data = retry_store(lambda: store.read(key), what="read a document")

`step` must be a whole transaction (it opens and commits its own session), so running it
again repeats nothing half-done. Retried: OperationalError (refused or lost connection,
server shutting down, SQLite busy) and errors on a connection found dead. Not retried:
integrity errors, bad SQL and the like, which waiting does not fix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from storage.errors import DatabaseUnavailableError, StoreUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")

DELAYS = (0.5, 1, 2, 4, 8, 16)  # seconds before each retry: 7 attempts spread over 31.5 s


def delays_within(seconds: float, first: float = 0.5) -> tuple[float, ...]:
    """Waits doubling from `first` whose sum stays within `seconds` (31.5 gives DELAYS):
    how an operator trades patience through an outage against a fast, clear failure."""
    out: list[float] = []
    delay = first
    while sum(out) + delay <= seconds + 1e-9:
        out.append(delay)
        delay *= 2
    return tuple(out)


def database_delays() -> tuple[float, ...]:
    """The waits of `CROPVLM_DATABASE_RETRY_SECONDS` (default 31.5: 7 attempts)."""
    from storage.settings import Settings

    return delays_within(Settings().database_retry_seconds)


def is_transient(exc: BaseException) -> bool:
    """A failure that may pass by waiting: the server or the connection to it is gone."""
    return isinstance(exc, sa.exc.OperationalError) or (
        isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated)


def short_reason(exc: BaseException) -> str:
    """The first line of the driver's message, for one-line logs."""
    orig = getattr(exc, "orig", None)
    return (str(orig or exc).strip().splitlines() or [type(exc).__name__])[0]


def retry_database(step: Callable[[], T], *, what: str, delays: tuple[float, ...] | None = None) -> T:
    """`delays`: seconds before each retry (default: `database_delays()`)."""
    return _retry(step, what, database_delays() if delays is None else delays, "database", DatabaseUnavailableError,
                  lambda exc: isinstance(exc, sa.exc.DBAPIError) and is_transient(exc))


def retry_store(step: Callable[[], T], *, what: str, delays: tuple[float, ...] = DELAYS[:5]) -> T:
    """On top of botocore's own retries (a few seconds): an S3 restart of up to ~15 s."""
    return _retry(step, what, delays, "object store", StoreUnavailableError,
                  lambda exc: isinstance(exc, StoreUnavailableError))


def _retry(step, what, delays, service, error, transient):
    for attempt, delay in enumerate((*delays, None), start=1):
        try:
            return step()
        except Exception as exc:
            if not transient(exc):
                raise
            reason = short_reason(exc)
            if delay is None:
                raise error(f"{service} unavailable while trying to {what} ({attempt} attempts over "
                            f"{sum(delays):g} s): {reason}") from exc
            log.warning("%s unavailable while trying to %s (%s); retrying in %g s", service, what, reason, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
