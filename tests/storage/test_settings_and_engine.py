"""Settings from the environment, secret masking, engine setup, and the import direction."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

import storage
from storage.db import make_engine, normalize_url
from storage.settings import Settings, mask_url
from tests.imports import imported_modules


def test_settings_defaults_and_environment(monkeypatch):
    for name in ("DATABASE_URL", "CROPVLM_ARTIFACTS_URI", "CROPVLM_S3_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    default = Settings()
    assert default.database_url == "sqlite:///.cropvlm/cropvlm.db"
    assert default.artifacts_uri == ".cropvlm/artifacts" and default.s3_max_attempts == 5

    monkeypatch.setenv("DATABASE_URL", "postgresql://app:s3cret@db:5432/cropvlm")
    monkeypatch.setenv("CROPVLM_ARTIFACTS_URI", "s3://bucket/crops")
    monkeypatch.setenv("CROPVLM_S3_MAX_ATTEMPTS", "2")
    settings = Settings()
    assert settings.database_url == "postgresql://app:s3cret@db:5432/cropvlm"
    assert (settings.artifacts_uri, settings.s3_max_attempts) == ("s3://bucket/crops", 2)
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings)
    assert settings.safe_database_url() == "postgresql://app:***@db:5432/cropvlm"
    assert mask_url("not a url") == "<unparseable database URL>"


def test_postgres_urls_use_psycopg3():
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"


def test_default_sqlite_database_is_created_under_cwd_with_pragmas(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    engine = make_engine()
    try:
        with engine.connect() as conn:
            pragmas = [
                conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                for p in ("foreign_keys", "journal_mode", "busy_timeout")
            ]
    finally:
        engine.dispose()
    assert (tmp_path / ".cropvlm" / "cropvlm.db").is_file()
    assert pragmas == [1, "wal", 30000]


def test_in_memory_sqlite_works():
    engine = make_engine("sqlite://")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1


def test_storage_never_imports_orchestration():
    forbidden = {"prefect", "flows", "tasks", "app"}
    for path_name, name in imported_modules(Path(storage.__file__).parent):
        assert name.split(".")[0] not in forbidden, f"{path_name} imports {name}"


def test_an_unreachable_database_is_one_clear_error_with_the_password_masked():
    import time

    from storage.db import prepare_database
    from storage.errors import DatabaseUnavailableError

    started = time.perf_counter()
    with pytest.raises(DatabaseUnavailableError) as err:
        prepare_database("postgresql://app:s3cret@127.0.0.1:1/cropvlm")  # nothing listens on port 1
    message = str(err.value)
    assert "unreachable" in message and "127.0.0.1:1" in message and "s3cret" not in message
    assert time.perf_counter() - started < 15  # refused at once; a silent host gives up at connect_timeout


def test_postgres_engines_time_out_their_connects_and_keep_connections_alive():
    from storage.db import POSTGRES_CONNECT_ARGS, make_engine

    engine = make_engine("postgresql://postgres@127.0.0.1/x", connect_args={"connect_timeout": 3})
    seen = {}

    @sa.event.listens_for(engine, "do_connect")
    def capture(dialect, record, cargs, cparams):
        seen.update(cparams)
        raise ConnectionAbortedError("captured")  # what the driver would get; no connection made

    with pytest.raises(Exception, match="captured"):
        engine.connect()
    assert seen["connect_timeout"] == 3  # the caller's setting wins
    assert seen["keepalives"] == POSTGRES_CONNECT_ARGS["keepalives"] == 1
