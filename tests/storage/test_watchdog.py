"""PostgreSQL statements end in bounded time: the server cancels a slow one at
statement_timeout, and the watchdog unsticks one whose server froze (a proxy that holds
every byte stands in for a SIGSTOPped server)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from psycopg import pq
from sqlalchemy.engine import make_url

from storage import watchdog
from storage.db import make_engine
from storage.watchdog import watch_statements
from tests.faults.proxy import TcpProxy


@pytest.fixture
def proxied_url(postgres_url):
    url = make_url(postgres_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxy.thaw()
    proxy.close()


def test_the_server_cancels_a_statement_past_the_timeout(postgres_url, monkeypatch):
    monkeypatch.setenv("CROPVLM_DATABASE_STATEMENT_TIMEOUT", "0.5")
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SHOW statement_timeout")) == "500ms"
            started = time.perf_counter()
            with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
                connection.execute(sa.text("SELECT pg_sleep(5)"))
            assert time.perf_counter() - started < 3
    finally:
        engine.dispose()


def test_a_statement_on_a_frozen_server_fails_instead_of_hanging(proxied_url):
    proxy, url = proxied_url
    engine = make_engine(url, pool_pre_ping=False)  # the statement itself waits, not a ping
    watch_statements(engine, 1)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            proxy.freeze()
            started = time.perf_counter()
            with pytest.raises(sa.exc.OperationalError):
                connection.execute(sa.text("SELECT 2"))
            assert time.perf_counter() - started < 5
    finally:
        engine.dispose()


def test_a_pooled_connection_whose_server_froze_fails_its_ping_then_its_connect(proxied_url, monkeypatch):
    proxy, url = proxied_url
    monkeypatch.setenv("CROPVLM_DATABASE_CONNECT_TIMEOUT", "2")
    engine = make_engine(url)
    watch_statements(engine, 1)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))  # back in the pool, idle, when the server freezes
        proxy.freeze()
        started = time.perf_counter()
        with pytest.raises(sa.exc.OperationalError), engine.connect() as connection:
            connection.execute(sa.text("SELECT 2"))
        assert time.perf_counter() - started < 8  # ping stopped at ~1 s, a new connect at 2 s
    finally:
        engine.dispose()


class FakeConnection:
    """What the watchdog reads of a psycopg connection."""

    closed = False
    info = SimpleNamespace(host="db", port=5432)

    def __init__(self):
        self.pgconn = SimpleNamespace(transaction_status=pq.TransactionStatus.IDLE)

    def fileno(self) -> int:
        return 99


def test_a_connection_busy_without_a_new_statement_since_it_was_idle_is_timed_from_then(monkeypatch):
    # A COMMIT or a ping runs no cursor statement: the count is the one seen while idle.
    shut = []
    monkeypatch.setattr(watchdog, "_shut_down", shut.append)
    dog, connection = watchdog.StatementWatchdog(10), FakeConnection()
    dog._connections[connection] = watchdog._Watched()
    assert dog.check(0) == []
    connection.pgconn.transaction_status = pq.TransactionStatus.ACTIVE
    assert dog.check(1) == [] and dog.check(11) == [] and shut == []
    assert dog.check(12) == ["no answer from db:5432 in 10 s: connection shut down"] and shut == [99]
