"""Alembic migrations on SQLite and PostgreSQL: from empty, agreement with the models, downgrade."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import storage
from storage.db import downgrade_database, make_engine, upgrade_database
from storage.models import Base
from storage.views import VIEW_COLUMNS, VIEW_NAMES

TABLES = {
    "template_sets",
    "documents",
    "extraction_runs",
    "run_documents",
    "extractions",
    "document_claims",
    "answers",
    "labels",
    "document_splits",
    "policy_versions",
    "training_runs",
}
VIEWS = set(VIEW_NAMES) | {"current_labels"}


def _inspect(url: str) -> tuple[set[str], set[str], dict[str, list[str]]]:
    engine = make_engine(url)
    try:
        inspector = sa.inspect(engine)
        views = set(inspector.get_view_names())
        columns = {v: [c["name"] for c in inspector.get_columns(v)] for v in views}
        return set(inspector.get_table_names()), views, columns
    finally:
        engine.dispose()


def test_upgrade_from_empty_creates_tables_and_views(empty_db_url):
    assert _inspect(empty_db_url)[0] == set()
    upgrade_database(empty_db_url)
    tables, views, columns = _inspect(empty_db_url)
    assert tables == TABLES | {"alembic_version"}
    assert views == VIEWS
    assert columns["extracted_fields"] == list(VIEW_COLUMNS)
    assert columns["document_fields"] == list(VIEW_COLUMNS)
    upgrade_database(empty_db_url)  # already at head: a no-op


def test_models_agree_with_migrated_schema(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(db_url):
    downgrade_database(db_url, "base")
    tables, views, _ = _inspect(db_url)
    assert tables == {"alembic_version"} and views == set()
    upgrade_database(db_url)
    assert _inspect(db_url)[0] == TABLES | {"alembic_version"}


def test_concurrent_prepare_database_on_postgres(pg_server):
    """Flow runs starting together on an empty database: one migrates, the others wait."""
    name = pg_server.create()
    url = pg_server.url_for(name)
    # Processes, not threads: Alembic's `context` is process-global.
    code = "import sys; from storage.db import prepare_database; prepare_database(sys.argv[1])"
    root = Path(storage.__file__).resolve().parent.parent
    workers = [
        subprocess.Popen([sys.executable, "-c", code, url], cwd=root, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    try:
        for worker in workers:
            _, stderr = worker.communicate(timeout=60)
            assert worker.returncode == 0, stderr.decode()
        assert _inspect(url)[0] == TABLES | {"alembic_version"}
    finally:
        pg_server.drop(name)
