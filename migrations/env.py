"""Alembic environment: the URL comes from storage.db.upgrade_database or DATABASE_URL.

SQLite migrations run in batch mode (SQLite cannot ALTER most things, so Alembic rebuilds
the table) with foreign keys off, so a rebuild never cascades deletes into child tables.
On PostgreSQL a transaction-level advisory lock serialises concurrent upgrades (two flow
runs starting on an empty database): the second waits, then finds the schema at head.
"""

from __future__ import annotations

from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context

from storage.db import make_engine, normalize_url
from storage.models import Base
from storage.settings import Settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
MIGRATION_LOCK_ID = 0x63726F70766C6D  # "cropvlm": arbitrary, fixed key for pg_advisory_xact_lock


def _database_url():
    url = config.attributes.get("database_url") or Settings().database_url
    return normalize_url(url)


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it."""
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_database_url(), sqlite_foreign_keys=False)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
                    )
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
