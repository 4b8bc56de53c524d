"""Fixtures of the fault suite: a Prefect API the `cropvlm` processes share, a fresh migrated
PostgreSQL database per test, and a folder of small documents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.runs import make_source


@pytest.fixture(scope="session")
def prefect_api_url() -> Iterator[str]:
    """One Prefect API for every process of the session (the CLI's own temporary server takes ~8 s)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture
def pg_url(pg_server, _pg_migrated_template) -> Iterator[str]:
    name = pg_server.create(template=_pg_migrated_template)
    yield pg_server.url_for(name)
    pg_server.drop(name)


@pytest.fixture
def source(tmp_path) -> Path:
    return make_source(tmp_path / "docs")
