"""Initial schema: documents, runs, idempotent extractions, answers with crop provenance.

Why: the extract flow needs (1) an idempotence key per document × template set × policy
× reader so scheduled re-runs skip finished work, (2) a per-run record of every listed
object so failures are visible in SQL, and (3) every answer with the crop that produced
it (percent and pixel boxes, thumbnail URI, raw policy output) so results can be audited
and reviewed answers can become training labels. Two views give plain-SQL access.

The view SQL is copied here on purpose: storage/views.py may change in a later migration,
this one must not.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 00:01:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False, server_default: bool = True) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=sa.func.now() if server_default else None,
        nullable=nullable,
    )


EXTRACTED_FIELDS_SQL = """
CREATE VIEW extracted_fields AS
SELECT
    a.id AS answer_id,
    d.uri AS document_uri,
    d.sha256 AS document_sha256,
    a.field AS field,
    a.question AS question,
    a.answer AS answer,
    a.value AS value,
    a.confidence AS confidence,
    a.page_number AS page_number,
    a.is_best AS is_best,
    a.crop_x1 AS crop_x1,
    a.crop_y1 AS crop_y1,
    a.crop_x2 AS crop_x2,
    a.crop_y2 AS crop_y2,
    a.crop_uri AS crop_uri,
    a.policy AS policy,
    a.reader AS reader,
    t.name AS template_set,
    e.template_set_hash AS template_set_hash,
    e.run_id AS run_id,
    a.created_at AS extracted_at
FROM answers a
JOIN extractions e ON e.id = a.extraction_id
JOIN documents d ON d.id = a.document_id
JOIN template_sets t ON t.hash = e.template_set_hash
"""

DOCUMENT_FIELDS_SQL = """
CREATE VIEW document_fields AS
SELECT * FROM extracted_fields WHERE is_best
"""


def upgrade() -> None:
    op.create_table(
        "template_sets",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_template_sets")),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("media_type", sa.String(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("sha256", name=op.f("uq_documents_sha256")),
    )
    op.create_table(
        "extraction_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow_run_id", sa.String(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("template_set_hash", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(), nullable=False),
        sa.Column("reader", sa.String(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("documents_total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("documents_extracted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("documents_skipped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("documents_failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("pages_processed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("answers_written", sa.Integer(), server_default="0", nullable=False),
        sa.Column("wall_seconds", sa.Double(), nullable=True),
        sa.Column("policy_seconds", sa.Double(), nullable=True),
        sa.Column("reader_seconds", sa.Double(), nullable=True),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True, server_default=False),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'completed_with_failures', 'failed')",
            name=op.f("ck_extraction_runs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["template_set_hash"],
            ["template_sets.hash"],
            name=op.f("fk_extraction_runs_template_set_hash_template_sets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extraction_runs")),
    )
    op.create_table(
        "run_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("answers", sa.Integer(), nullable=True),
        sa.Column("seconds", sa.Double(), nullable=True),
        _timestamp("created_at"),
        sa.CheckConstraint(
            "status IN ('extracted', 'skipped', 'failed')", name=op.f("ck_run_documents_status")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_run_documents_document_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["extraction_runs.id"],
            name=op.f("fk_run_documents_run_id_extraction_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_documents")),
        sa.UniqueConstraint("run_id", "uri", name=op.f("uq_run_documents_run_id_uri")),
    )
    op.create_index(op.f("ix_run_documents_document_id"), "run_documents", ["document_id"])
    op.create_table(
        "extractions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("template_set_hash", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(), nullable=False),
        sa.Column("reader", sa.String(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_extractions_document_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["extraction_runs.id"], name=op.f("fk_extractions_run_id_extraction_runs")
        ),
        sa.ForeignKeyConstraint(
            ["template_set_hash"],
            ["template_sets.hash"],
            name=op.f("fk_extractions_template_set_hash_template_sets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extractions")),
        sa.UniqueConstraint(
            "document_id",
            "template_set_hash",
            "policy",
            "reader",
            name=op.f("uq_extractions_document_id_template_set_hash_policy_reader"),
        ),
    )
    op.create_index(op.f("ix_extractions_run_id"), "extractions", ["run_id"])
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("extraction_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("page_number", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer_type", sa.String(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("is_best", sa.Boolean(), nullable=False),
        sa.Column("crop_x1", sa.Double(), nullable=True),
        sa.Column("crop_y1", sa.Double(), nullable=True),
        sa.Column("crop_x2", sa.Double(), nullable=True),
        sa.Column("crop_y2", sa.Double(), nullable=True),
        sa.Column("crop_px_x1", sa.Integer(), nullable=True),
        sa.Column("crop_px_y1", sa.Integer(), nullable=True),
        sa.Column("crop_px_x2", sa.Integer(), nullable=True),
        sa.Column("crop_px_y2", sa.Integer(), nullable=True),
        sa.Column("page_width", sa.Integer(), nullable=False),
        sa.Column("page_height", sa.Integer(), nullable=False),
        sa.Column("crop_uri", sa.Text(), nullable=True),
        sa.Column("policy", sa.String(), nullable=False),
        sa.Column("reader", sa.String(), nullable=False),
        sa.Column("policy_output", sa.Text(), nullable=True),
        sa.Column("policy_valid", sa.Boolean(), nullable=False),
        sa.Column("answer_source", sa.String(), nullable=True),
        sa.Column("latency_ms", sa.Double(), nullable=True),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_answers_document_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["extraction_id"],
            ["extractions.id"],
            name=op.f("fk_answers_extraction_id_extractions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answers")),
        sa.UniqueConstraint(
            "extraction_id",
            "page_number",
            "field",
            name=op.f("uq_answers_extraction_id_page_number_field"),
        ),
    )
    op.create_index(op.f("ix_answers_document_id"), "answers", ["document_id"])
    op.create_index(
        "uq_answers_best_page",
        "answers",
        ["extraction_id", "field"],
        unique=True,
        postgresql_where=sa.text("is_best"),
        sqlite_where=sa.text("is_best"),
    )
    op.execute(EXTRACTED_FIELDS_SQL)
    op.execute(DOCUMENT_FIELDS_SQL)


def downgrade() -> None:
    op.execute("DROP VIEW document_fields")
    op.execute("DROP VIEW extracted_fields")
    op.drop_table("answers")
    op.drop_table("extractions")
    op.drop_table("run_documents")
    op.drop_table("extraction_runs")
    op.drop_table("documents")
    op.drop_table("template_sets")
