"""Unstick PostgreSQL connections whose server froze: shut the socket of one that has waited
on the same statement, commit or ping for longer than a limit.

    watch_statements(engine, seconds=65)

PostgreSQL's statement_timeout is the server's: a frozen server (SIGSTOP, a stalled VM, a
network path that drops packets one way) never sends it, TCP keepalives are answered by its
kernel, and psycopg waits without end. Once a second this thread looks at each connection of
the engine; one still busy, with no new statement, past the limit has its socket shut down,
so the waiting call fails with OperationalError and storage/retry.py reconnects (bounded by
connect_timeout) or gives up with one error.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import weakref
from dataclasses import dataclass

import sqlalchemy as sa
from psycopg import pq

log = logging.getLogger(__name__)


@dataclass
class _Watched:
    statements: int = 0  # cursor executions so far: a change means progress
    busy_since: float | None = None
    busy_mark: int = -1  # `statements` when busy_since was set


class StatementWatchdog:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._connections: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()  # held while a connection is looked at, and while the pool closes one
        self._thread: threading.Thread | None = None

    def watch(self, engine: sa.Engine) -> None:
        sa.event.listen(engine, "connect", self._add)
        sa.event.listen(engine, "close", self._remove)
        sa.event.listen(engine, "detach", self._remove)
        sa.event.listen(engine, "before_cursor_execute", self._count)

    def check(self, now: float) -> list[str]:
        """Shut down connections stuck past the limit; returns why, one line each."""
        stuck = []
        with self._lock:
            for connection, watched in list(self._connections.items()):
                busy = not connection.closed and connection.pgconn.transaction_status == pq.TransactionStatus.ACTIVE
                # busy_since None: it was idle last time and is busy now without a statement (a commit)
                if not busy or watched.busy_mark != watched.statements or watched.busy_since is None:
                    watched.busy_since = now if busy else None
                    watched.busy_mark = watched.statements
                elif now - watched.busy_since > self.seconds:
                    _shut_down(connection.fileno())
                    watched.busy_since = None
                    stuck.append(f"no answer from {connection.info.host}:{connection.info.port} in "
                                 f"{self.seconds:g} s: connection shut down")
        return stuck

    def _add(self, dbapi_connection, _record) -> None:
        with self._lock:
            self._connections[dbapi_connection] = _Watched()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="statement-watchdog", daemon=True)
                self._thread.start()

    def _remove(self, dbapi_connection, _record) -> None:
        with self._lock:
            self._connections.pop(dbapi_connection, None)

    def _count(self, connection, _cursor, _statement, _parameters, _context, _executemany) -> None:
        watched = self._connections.get(connection.connection.dbapi_connection)
        if watched is not None:
            watched.statements += 1

    def _run(self) -> None:
        interval = min(1.0, self.seconds / 4)
        while True:
            time.sleep(interval)
            for reason in self.check(time.monotonic()):
                log.warning("database %s", reason)
            with self._lock:
                if not self._connections:  # the engine was disposed: the next connect starts a watch again
                    self._thread = None
                    return


def watch_statements(engine: sa.Engine, seconds: float) -> StatementWatchdog:
    watchdog = StatementWatchdog(seconds)
    watchdog.watch(engine)
    return watchdog


def _shut_down(fd: int) -> None:
    """Shut the connection down under psycopg's feet (a duplicate fd: psycopg still owns its own)."""
    sock = socket.socket(fileno=socket.dup(fd))
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()
