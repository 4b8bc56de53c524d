"""Labels with history, train/heldout splits, the policy registry and training runs.

Why: retraining needs gold answers that reviewers can correct without losing what was
there before (a correction is a new `labels` row; `current_labels` shows the latest per
document, page and field), a held-out set fixed per document so a promoted policy is
judged on documents it never trained on, a record of policy versions with at most one
promoted (enforced by a partial unique index), and training runs with checkpoints so an
interrupted run resumes instead of starting over.

The view SQL is copied here on purpose: storage/labels.py may change in a later
migration, this one must not.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 00:02:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False, server_default: bool = True) -> sa.Column:
    return sa.Column(
        name,
        sa.DateTime(timezone=True),
        server_default=sa.func.now() if server_default else None,
        nullable=nullable,
    )


CURRENT_LABELS_SQL = """
CREATE VIEW current_labels AS
SELECT
    l.id AS label_id,
    l.document_id AS document_id,
    d.uri AS document_uri,
    d.sha256 AS document_sha256,
    s.split AS split,
    l.page_number AS page_number,
    l.field AS field,
    l.question AS question,
    l.answer AS answer,
    l.answer_type AS answer_type,
    l.box_x1 AS box_x1,
    l.box_y1 AS box_y1,
    l.box_x2 AS box_x2,
    l.box_y2 AS box_y2,
    l.source AS source,
    l.reviewer AS reviewer,
    l.created_at AS labelled_at
FROM (
    SELECT
        labels.*,
        ROW_NUMBER() OVER (
            PARTITION BY document_id, page_number, field
            ORDER BY created_at DESC, id DESC
        ) AS recency
    FROM labels
) l
JOIN documents d ON d.id = l.document_id
LEFT JOIN document_splits s ON s.document_id = l.document_id
WHERE l.recency = 1
"""


def upgrade() -> None:
    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow_run_id", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True, server_default=False),
        sa.Column("step", sa.Integer(), server_default="0", nullable=False),
        sa.Column("checkpoint_uri", sa.Text(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'failed')", name=op.f("ck_training_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_runs")),
    )
    op.create_index(op.f("ix_training_runs_config_hash"), "training_runs", ["config_hash"])
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("reader", sa.String(), nullable=True),
        sa.Column("training_run_id", sa.Integer(), nullable=True),
        _timestamp("created_at"),
        _timestamp("decided_at", nullable=True, server_default=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('candidate', 'promoted', 'rejected', 'retired')",
            name=op.f("ck_policy_versions_status"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["policy_versions.id"],
            name=op.f("fk_policy_versions_parent_id_policy_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["training_run_id"],
            ["training_runs.id"],
            name=op.f("fk_policy_versions_training_run_id_training_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_versions")),
        sa.UniqueConstraint("version", name=op.f("uq_policy_versions_version")),
    )
    op.create_index(
        "uq_policy_versions_promoted",
        "policy_versions",
        ["status"],
        unique=True,
        postgresql_where=sa.text("status = 'promoted'"),
        sqlite_where=sa.text("status = 'promoted'"),
    )
    op.create_table(
        "document_splits",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(), nullable=False),
        _timestamp("assigned_at"),
        sa.CheckConstraint(
            "split IN ('train', 'heldout')", name=op.f("ck_document_splits_split")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_document_splits_document_id_documents"),
        ),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_document_splits")),
    )
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("page_number", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(), nullable=False),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("answer_type", sa.String(), nullable=True),
        sa.Column("box_x1", sa.Double(), nullable=True),
        sa.Column("box_y1", sa.Double(), nullable=True),
        sa.Column("box_x2", sa.Double(), nullable=True),
        sa.Column("box_y2", sa.Double(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("reviewer", sa.String(), nullable=True),
        _timestamp("created_at"),
        sa.CheckConstraint(
            "page_number IS NULL OR page_number >= 1", name=op.f("ck_labels_page_number")
        ),
        sa.CheckConstraint(
            "(box_x1 IS NULL AND box_y1 IS NULL AND box_x2 IS NULL AND box_y2 IS NULL) OR "
            "(box_x1 >= 0 AND box_y1 >= 0 AND box_x2 <= 100 AND box_y2 <= 100 "
            "AND box_x1 < box_x2 AND box_y1 < box_y2)",
            name=op.f("ck_labels_box"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_labels_document_id_documents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
    )
    op.create_index("ix_labels_document_id_field", "labels", ["document_id", "field"])
    op.execute(CURRENT_LABELS_SQL)


def downgrade() -> None:
    op.execute("DROP VIEW current_labels")
    op.drop_index("ix_labels_document_id_field", table_name="labels")
    op.drop_table("labels")
    op.drop_table("document_splits")
    op.drop_index("uq_policy_versions_promoted", table_name="policy_versions")
    op.drop_table("policy_versions")
    op.drop_index(op.f("ix_training_runs_config_hash"), table_name="training_runs")
    op.drop_table("training_runs")
