"""retry_database: transient database errors are retried with backoff, others are not."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from storage.errors import DatabaseUnavailableError
from storage.retry import DELAYS, database_delays, delays_within, retry_database


class Refused(Exception):
    pass


def failing(times: int, error: Exception):
    calls = []

    def step():
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "ok"

    return step, calls


def test_a_lost_connection_is_retried_until_it_comes_back():
    step, calls = failing(2, sa.exc.OperationalError("SELECT 1", {}, Refused("connection refused")))
    assert retry_database(step, what="test", delays=(0.01, 0.01, 0.01)) == "ok"
    assert len(calls) == 3


def test_an_outage_longer_than_the_retries_is_one_error_naming_the_step():
    step, calls = failing(10, sa.exc.OperationalError("SELECT 1", {}, Refused("connection refused")))
    with pytest.raises(DatabaseUnavailableError, match="while trying to write answers .3 attempts.*connection refused"):
        retry_database(step, what="write answers", delays=(0.01, 0.01))
    assert len(calls) == 3


def test_errors_that_waiting_does_not_fix_are_raised_at_once():
    step, calls = failing(1, sa.exc.IntegrityError("INSERT", {}, Refused("duplicate key")))
    with pytest.raises(sa.exc.IntegrityError):
        retry_database(step, what="test", delays=(0.01,))
    assert len(calls) == 1


def test_the_retry_budget_is_a_setting_of_doubling_waits(monkeypatch):
    assert database_delays() == DELAYS  # 31.5 s by default
    assert delays_within(3.5) == (0.5, 1, 2)
    assert delays_within(0.4) == ()  # no patience: one attempt, then the error
    monkeypatch.setenv("CROPVLM_DATABASE_RETRY_SECONDS", "1.5")
    assert database_delays() == (0.5, 1)
    step, calls = failing(10, sa.exc.OperationalError("SELECT 1", {}, Refused("connection refused")))
    with pytest.raises(DatabaseUnavailableError, match=r"3 attempts over 1.5 s"):
        retry_database(step, what="open the run")
    assert len(calls) == 3
