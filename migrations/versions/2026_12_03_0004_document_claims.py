"""Document claims with leases, and a lease on each run.

Why: two overlapping runs (or a run and its retry) must not both do the model work for one
document, and a run whose process died (SIGKILL, OOM, a lost machine) must not stay
`running` forever nor keep its documents. A batch claims a document (its content, template
set, policy and reader: the key of `extractions`) before any model work; the claim holds
until the answers are written or the document fails, or until its lease expires because
the run stopped renewing it. A run's `lease_expires_at` is renewed by the same heartbeat;
the next run's start marks runs whose lease expired `crashed`. Runs left `running` from
before this revision have no lease: the sweep treats them as dead one lease after they
started.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 00:04:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("extraction_runs", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "document_claims",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("template_set_hash", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(), nullable=False),
        sa.Column("reader", sa.String(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["extraction_runs.id"], ondelete="CASCADE",
                                name=op.f("fk_document_claims_run_id_extraction_runs")),
        sa.PrimaryKeyConstraint("sha256", "template_set_hash", "policy", "reader", name=op.f("pk_document_claims")),
    )
    op.create_index(op.f("ix_document_claims_run_id"), "document_claims", ["run_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_document_claims_run_id"), table_name="document_claims")
    op.drop_table("document_claims")
    with op.batch_alter_table("extraction_runs") as batch:
        batch.drop_column("lease_expires_at")
