"""A run split into shards: each shard is a run of its own, linked to the run that listed it.

Why: with `shard_documents` the extract flow hands shards of the listing to other workers'
flow runs. Each shard needs its own lease (a dead worker's shard is swept `crashed` and
re-run while the parent lives on), so it is its own `extraction_runs` row; `parent_run_id`
lets the parent's summary, document table and `cropvlm export --run` cover its shards.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 00:05:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("extraction_runs") as batch:
        batch.add_column(sa.Column("parent_run_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_extraction_runs_parent_run_id_extraction_runs"), "extraction_runs",
                                 ["parent_run_id"], ["id"], ondelete="CASCADE")
        batch.create_index(op.f("ix_extraction_runs_parent_run_id"), ["parent_run_id"])


def downgrade() -> None:
    with op.batch_alter_table("extraction_runs") as batch:
        batch.drop_index(op.f("ix_extraction_runs_parent_run_id"))
        batch.drop_constraint(op.f("fk_extraction_runs_parent_run_id_extraction_runs"), type_="foreignkey")
        batch.drop_column("parent_run_id")
