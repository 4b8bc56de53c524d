"""PostgreSQL unreachable or frozen for a while in the middle of a run: the run retries and
completes; frozen for good: the run fails in bounded time instead of hanging.

The run reaches the shared server through a TCP proxy on loopback; cutting the proxy drops
every open connection and refuses new ones, as a server restart or failover does; freezing it
holds every byte, as a SIGSTOPped server does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import make_url

from tests.faults.proxy import TcpProxy
from tests.faults.runs import Extraction, assert_each_document_extracted_once, model_calls_begun, runs, wait_until


FROZEN_ENV = {"CROPVLM_DATABASE_STATEMENT_TIMEOUT": "1", "CROPVLM_DATABASE_CONNECT_TIMEOUT": "2"}
# Frozen for good: the run gives up after 3.5 s of waits instead of the default 31.5 s.
GIVE_UP_ENV = {**FROZEN_ENV, "CROPVLM_DATABASE_RETRY_SECONDS": "3.5"}


@contextmanager
def run_through_proxy(tmp_path, pg_url, source, api_url, env_extra=None) -> Iterator[tuple[TcpProxy, Extraction]]:
    """A run that reaches PostgreSQL through a proxy, its model calls under way and held until
    the test lets them go (by removing the gate file)."""
    url = make_url(pg_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        gate = tmp_path / "hold"
        gate.touch()
        run = Extraction(tmp_path, "run", through_proxy, source, api_url=api_url, gate=gate, env_extra=env_extra)
        wait_until(lambda: model_calls_begun(tmp_path) >= 2, run, what="model calls under way")
        yield proxy, run
    finally:
        proxy.thaw()
        proxy.close()


@pytest.mark.parametrize("seconds", [3, pytest.param(25, marks=pytest.mark.slow)])
def test_a_run_rides_out_a_database_outage(tmp_path, pg_url, source, prefect_api_url, seconds):
    with run_through_proxy(tmp_path, pg_url, source, prefect_api_url) as (proxy, run):
        cut_at = time.monotonic()
        proxy.cut(seconds)
        (tmp_path / "hold").unlink()  # the answers are ready while the database is away
        assert run.wait(seconds + 60) == 0, run.stderr()
        assert time.monotonic() - cut_at > seconds  # it waited the outage out
        assert "database unavailable while trying to" in run.stderr()  # the retries, in the log
    assert {status for status, _, _ in runs(pg_url).values()} == {"completed"}
    assert_each_document_extracted_once(pg_url, tmp_path)


def test_a_run_rides_out_a_frozen_database(tmp_path, pg_url, source, prefect_api_url):
    with run_through_proxy(tmp_path, pg_url, source, prefect_api_url, FROZEN_ENV) as (proxy, run):
        proxy.freeze(10)
        (tmp_path / "hold").unlink()  # the answers are ready while the database is frozen
        assert run.wait(90) == 0, run.stderr()
        assert "connection shut down" in run.stderr()  # the watchdog unstuck a connection
    assert {status for status, _, _ in runs(pg_url).values()} == {"completed"}
    assert_each_document_extracted_once(pg_url, tmp_path)


@pytest.mark.slow
def test_a_database_frozen_for_good_fails_the_run_in_bounded_time(tmp_path, pg_url, source, prefect_api_url):
    with run_through_proxy(tmp_path, pg_url, source, prefect_api_url, GIVE_UP_ENV) as (proxy, run):
        proxy.freeze()
        frozen_at = time.monotonic()
        (tmp_path / "hold").unlink()
        assert run.wait(300) == 1, run.stderr()  # a run stopped by its infrastructure: documents left undone
        assert time.monotonic() - frozen_at < 120  # watchdog 6 s, then 4 connects of 2 s and 3.5 s of waits, per step
        assert "cropvlm: run stopped: database unavailable while trying to" in run.stderr()
        assert "(4 attempts over 3.5 s)" in run.stderr()  # the operator's retry budget, not the default
