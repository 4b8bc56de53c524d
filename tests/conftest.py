"""Shared fixtures: a real S3 server, real PostgreSQL databases, migrated test databases.

    s3_server     session: endpoint of an S3 server (moto_server on loopback, or
                  $CROPVLM_TEST_S3_ENDPOINT); AWS_* variables set for the session
    s3_bucket     per test: a fresh, uniquely named bucket (emptied and deleted afterwards)
    pg_server     session: the PostgreSQL server ($CROPVLM_TEST_PG_URL or
                  postgresql+psycopg://postgres@127.0.0.1:5432/postgres); .create() a
                  database, .url_for(name), .drop(name)
    postgres_url  session: a fresh empty database cropvlm_test_<random> (dropped at the end)
    db_url        per test, for "sqlite" and "postgresql": a migrated, empty database
    empty_db_url  per test, for "sqlite" and "postgresql": a database with no tables at all

PostgreSQL unreachable: tests that need it are skipped, or fail when $CI is set.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

# Prefect reads these when it is first imported: a private home, no telemetry.
os.environ.setdefault("PREFECT_HOME", os.path.join(os.environ.get("TMPDIR", "/tmp"), f"cropvlm-tests-prefect-{os.getpid()}"))
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
S3_START_TIMEOUT_S = 30


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` run only where CUDA is available (CI has none)."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# --- S3 ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_answering(endpoint: str, process: subprocess.Popen | None, log=None) -> None:
    deadline = time.monotonic() + S3_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            output = log.read_text(errors="replace") if log else ""
            raise RuntimeError(f"S3 server exited with {process.returncode}:\n{output}")
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answered, just not with 200
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"S3 server at {endpoint} did not answer within {S3_START_TIMEOUT_S} s")


def _start_moto(log: Path) -> tuple[str, subprocess.Popen]:
    port = _free_port()
    executable = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    command = [executable] if executable else [sys.executable, "-m", "moto.server"]
    # Output to a file, not a pipe: an unread pipe fills up and blocks the server.
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(endpoint, process, log)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return endpoint, process


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Endpoint URL of a running S3 server; AWS_* variables point boto3 at it."""
    external = os.environ.get("CROPVLM_TEST_S3_ENDPOINT")
    process = None
    if external:
        endpoint = external
        _wait_until_answering(endpoint, None)
    else:
        endpoint, process = _start_moto(tmp_path_factory.mktemp("s3") / "moto_server.log")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", endpoint)
        # A developer's own profile, session token or S3-only endpoint must not leak in.
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        if process is not None or "AWS_ACCESS_KEY_ID" not in os.environ:
            mp.setenv("AWS_ACCESS_KEY_ID", "test")
            mp.setenv("AWS_SECRET_ACCESS_KEY", "test")
        if process is not None or "AWS_DEFAULT_REGION" not in os.environ:
            mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        try:
            yield endpoint
        finally:
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def s3_client(s3_server: str):
    import boto3

    return boto3.client("s3", endpoint_url=s3_server)


@pytest.fixture
def s3_bucket(s3_client) -> Iterator[str]:
    """A fresh bucket for one test; emptied and deleted afterwards."""
    name = f"cropvlm-test-{secrets.token_hex(6)}"
    s3_client.create_bucket(Bucket=name)
    yield name
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
        if keys:
            s3_client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    s3_client.delete_bucket(Bucket=name)


# --- PostgreSQL ---------------------------------------------------------------------------


def _unavailable(message: str):
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: PostgreSQL tests must not be skipped)", pytrace=False)
    pytest.skip(message)


class PgServer:
    """Creates and drops databases on one server (AUTOCOMMIT: CREATE DATABASE needs it)."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        from storage.db import normalize_url

        self.url = normalize_url(url)
        self.engine = sa.create_engine(
            self.url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
        )

    def create(self, template: str | None = None) -> str:
        name = f"cropvlm_test_{secrets.token_hex(6)}"
        suffix = f' TEMPLATE "{template}"' if template else ""
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{suffix}')
        return name

    def drop(self, name: str) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url_for(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    import sqlalchemy as sa

    server = PgServer(os.environ.get("CROPVLM_TEST_PG_URL", DEFAULT_PG_URL))
    try:
        with server.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        _unavailable(f"PostgreSQL at {server.url.render_as_string()} is unreachable: {exc.orig}")
    yield server
    server.engine.dispose()


@pytest.fixture(scope="session")
def postgres_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database for the whole session (no tables; run upgrade_database)."""
    name = pg_server.create()
    yield pg_server.url_for(name)
    pg_server.drop(name)


@pytest.fixture(scope="session")
def _pg_migrated_template(pg_server: PgServer) -> Iterator[str]:
    """A migrated database that per-test databases are copied from (fast: no migrations)."""
    from storage.db import upgrade_database

    name = pg_server.create()
    upgrade_database(pg_server.url_for(name))
    yield name
    pg_server.drop(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database with no tables, per test: a SQLite file or a fresh Postgres database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cropvlm.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = server.create()
    yield server.url_for(name)
    server.drop(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A migrated, empty database per test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        from storage.db import upgrade_database

        url = f"sqlite:///{tmp_path / 'cropvlm.db'}"
        upgrade_database(url)
        yield url
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = server.create(template=request.getfixturevalue("_pg_migrated_template"))
    yield server.url_for(name)
    server.drop(name)
