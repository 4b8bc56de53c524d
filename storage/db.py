"""Engines, sessions and schema upgrades.

    engine = make_engine("postgresql://postgres@127.0.0.1/cropvlm")   # or sqlite:///path.db
    upgrade_database("postgresql://postgres@127.0.0.1/cropvlm")       # alembic upgrade head
    Session = make_session_factory(engine)
    with Session.begin() as session:                                  # commits or rolls back
        run_id = queries.start_run(session, ...)

`postgresql://` and `postgres://` URLs use psycopg 3. The schema changes only through the
migrations in the repository's `migrations/` folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from storage.errors import DatabaseUnavailableError
from storage.retry import short_reason
from storage.settings import Settings, mask_url
from storage.watchdog import watch_statements

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000  # writers wait this long for the lock instead of failing
# libpq connection settings: TCP keepalives notice a server that vanished under an open
# connection; connect and statement timeouts come from Settings.
POSTGRES_CONNECT_ARGS = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
WATCHDOG_GRACE_S = 5  # past statement_timeout: the server's own error comes first when it can answer


def normalize_url(url: str | URL) -> URL:
    """Pick the psycopg 3 driver for plain Postgres URLs; other URLs are returned as given."""
    url = make_url(url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def make_engine(
    url: str | URL | None = None, *, sqlite_foreign_keys: bool = True, **kwargs: Any
) -> Engine:
    """An engine for `url` (default: Settings().database_url).

    SQLite: the database's folder is created, and every connection gets foreign keys on,
    WAL (readers do not block the writer) and a busy timeout. `sqlite_foreign_keys=False`
    is for migrations, where batch table rebuilds would otherwise cascade deletes.
    """
    settings = Settings()
    url = normalize_url(url if url is not None else settings.database_url)
    if url.get_backend_name() == "postgresql":
        return _postgres_engine(url, settings, **kwargs)
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, **kwargs)

    in_memory = url.database in (None, "", ":memory:") or url.database.startswith("file::memory:")
    if not in_memory:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if sqlite_foreign_keys else 'OFF'}")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    return engine


def _postgres_engine(url: URL, settings: Settings, **kwargs: Any) -> Engine:
    """A dead server fails a connect in connect_timeout; a slow statement is cancelled by the
    server at statement_timeout, and one on a frozen server by the watchdog a little later."""
    timeout = settings.database_statement_timeout
    connect_args = {**POSTGRES_CONNECT_ARGS, "connect_timeout": settings.database_connect_timeout}
    if timeout:
        connect_args["options"] = f"-c statement_timeout={round(timeout * 1000)}"  # milliseconds
    connect_args.update(kwargs.pop("connect_args", {}))
    engine = sa.create_engine(url, connect_args=connect_args, **{"pool_pre_ping": True, **kwargs})
    if timeout:
        watch_statements(engine, timeout + WATCHDOG_GRACE_S)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (tasks return ids, not live objects)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | URL | None = None) -> Config:
    """Alembic configuration for the repository's migrations, independent of the cwd."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    # Passed as an attribute, not an ini option: '%' in passwords would break interpolation.
    config.attributes["database_url"] = normalize_url(
        url if url is not None else Settings().database_url
    )
    return config


def upgrade_database(url: str | URL | None = None, revision: str = "head") -> None:
    """Apply migrations up to `revision` (alembic upgrade head)."""
    command.upgrade(alembic_config(url), revision)


def prepare_database(url: str | URL | None = None) -> None:
    """Make the database ready for a run: create it or bring it to the latest schema.

    Safe to call at the start of every run: at head it is a no-op, and on PostgreSQL
    concurrent callers wait for each other (the migration holds an advisory lock).
    An unreachable database raises DatabaseUnavailableError naming it, password masked.
    """
    try:
        upgrade_database(url, "head")
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        shown = mask_url(str(url if url is not None else Settings().database_url))
        raise DatabaseUnavailableError(f"database {shown} is unreachable: {short_reason(exc)}") from exc


def downgrade_database(url: str | URL | None = None, revision: str = "base") -> None:
    """Revert migrations down to `revision` (default: an empty database)."""
    command.downgrade(alembic_config(url), revision)
