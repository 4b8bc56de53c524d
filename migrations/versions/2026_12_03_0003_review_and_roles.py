"""Review flags on answers, one promoted version per role, more run and document statuses.

Why: (1) answers below a confidence threshold (from the template or settings) must be easy
to find in SQL, so `answers.needs_review` is written with each answer and both views show
it; (2) the registry now also holds trained answer heads for the OCR reader, promoted
independently of crop policies, so the "at most one promoted" index is per `role`
('policy' or 'answer_head'); (3) a run that died or was stopped is `crashed` or
`interrupted`, not `running` forever, and a document whose pages carry no text is `empty`,
not `extracted`.

The view SQL is copied here on purpose (see 0001).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 00:03:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
    a.needs_review AS needs_review,
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

OLD_EXTRACTED_FIELDS_SQL = EXTRACTED_FIELDS_SQL.replace("    a.needs_review AS needs_review,\n", "")

DOCUMENT_FIELDS_SQL = """
CREATE VIEW document_fields AS
SELECT * FROM extracted_fields WHERE is_best
"""

RUN_STATUSES = ("running", "completed", "completed_with_failures", "failed", "crashed", "interrupted")
OLD_RUN_STATUSES = ("running", "completed", "completed_with_failures", "failed")
DOCUMENT_STATUSES = ("extracted", "empty", "skipped", "failed")
OLD_DOCUMENT_STATUSES = ("extracted", "skipped", "failed")


def _in(values: Sequence[str]) -> str:
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _statuses(run: Sequence[str], document: Sequence[str]) -> None:
    with op.batch_alter_table("extraction_runs") as batch:
        batch.drop_constraint(op.f("ck_extraction_runs_status"), type_="check")
        batch.create_check_constraint("status", _in(run))
    with op.batch_alter_table("run_documents") as batch:
        batch.drop_constraint(op.f("ck_run_documents_status"), type_="check")
        batch.create_check_constraint("status", _in(document))


def _promoted_index(*columns: str) -> None:
    op.create_index("uq_policy_versions_promoted", "policy_versions", list(columns), unique=True,
                    postgresql_where=sa.text("status = 'promoted'"), sqlite_where=sa.text("status = 'promoted'"))


def upgrade() -> None:
    op.execute("DROP VIEW document_fields")
    op.execute("DROP VIEW extracted_fields")
    op.add_column("answers", sa.Column("needs_review", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(EXTRACTED_FIELDS_SQL)
    op.execute(DOCUMENT_FIELDS_SQL)

    op.drop_index("uq_policy_versions_promoted", table_name="policy_versions")
    op.add_column("policy_versions", sa.Column("role", sa.String(), nullable=False, server_default="policy"))
    _promoted_index("role")
    _statuses(RUN_STATUSES, DOCUMENT_STATUSES)


def downgrade() -> None:
    _statuses(OLD_RUN_STATUSES, OLD_DOCUMENT_STATUSES)  # fails if rows use the new statuses: on purpose
    op.drop_index("uq_policy_versions_promoted", table_name="policy_versions")
    op.execute("DELETE FROM policy_versions WHERE role <> 'policy'")
    with op.batch_alter_table("policy_versions") as batch:
        batch.drop_column("role")
    _promoted_index("status")

    op.execute("DROP VIEW document_fields")
    op.execute("DROP VIEW extracted_fields")
    with op.batch_alter_table("answers") as batch:
        batch.drop_column("needs_review")
    op.execute(OLD_EXTRACTED_FIELDS_SQL)
    op.execute(DOCUMENT_FIELDS_SQL)
