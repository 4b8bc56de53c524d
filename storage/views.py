"""SQL views for reading results with plain SQL (psql, sqlite3, BI tools).

extracted_fields — one row per answer: every field asked on every page.
document_fields  — the same columns, only the best page per field: one row per
                   document × field × template set × policy × reader. Start here.

    SELECT document_uri, field, value, confidence
    FROM document_fields
    WHERE template_set = 'receipt@v1' AND field = 'total';

Columns (both views):
    answer_id        answers.id, to link a review label to the answer it corrects
    document_uri     where the document was last seen (s3://bucket/key or absolute path);
                     the same bytes under two names are one document
    document_sha256  sha256 of the document's bytes, hex: its identity
    field            field name from the question template, e.g. total
    question         the question asked, verbatim
    answer           the reader's answer text, as produced
    value            the answer normalised for the field's type (text, date, amount, id) by
                     the core's normaliser; NULL when it did not parse
    confidence       the reader's confidence in the answer, 0-1 (with a trained answer head:
                     the probability that the answer is right, calibrated on held-out pages)
    needs_review     true when the answer is empty or its confidence was below the field's
                     review threshold when it was written (template `review_below`, else
                     CROPVLM_REVIEW_BELOW)
    page_number      page the answer came from, 1-based
    is_best          true on the page chosen for this field (always true in document_fields)
    crop_x1, crop_y1, crop_x2, crop_y2
                     the crop the reader saw, in percent (0-100) of page width (x) and
                     height (y), origin top-left; all NULL = the whole page (no crop or an
                     invalid policy box)
    crop_uri         thumbnail of the crop in the artifacts store; NULL if none was saved
    policy           the crop policy spec, e.g. full, center, hf:<model>@<revision>
    reader           the reader spec, e.g. ocr:rapidocr@768
    template_set     template set name, e.g. receipt@v1+invoice@v2
    template_set_hash  sha256 of the canonical template set: editing a question changes it
    run_id           extraction_runs.id of the run that wrote the answer
    extracted_at     when the answer was written (UTC)

The SQL is written once in portable SQL and runs unchanged on SQLite and PostgreSQL.
Migrations copy it (a migration must not change when this file does); a test checks that
the migrated views have these columns.
"""

from __future__ import annotations

import sqlalchemy as sa

from storage.models import UTCDateTime

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

DOCUMENT_FIELDS_SQL = """
CREATE VIEW document_fields AS
SELECT * FROM extracted_fields WHERE is_best
"""

VIEW_NAMES = ("document_fields", "extracted_fields")  # drop order: dependants first


def _view(name: str) -> sa.TableClause:
    """The view as a typed selectable, so results have Python types on every backend."""
    return sa.table(
        name,
        sa.column("answer_id", sa.Integer),
        sa.column("document_uri", sa.Text),
        sa.column("document_sha256", sa.String),
        sa.column("field", sa.String),
        sa.column("question", sa.Text),
        sa.column("answer", sa.Text),
        sa.column("value", sa.Text),
        sa.column("confidence", sa.Float),
        sa.column("needs_review", sa.Boolean),
        sa.column("page_number", sa.Integer),
        sa.column("is_best", sa.Boolean),
        sa.column("crop_x1", sa.Float),
        sa.column("crop_y1", sa.Float),
        sa.column("crop_x2", sa.Float),
        sa.column("crop_y2", sa.Float),
        sa.column("crop_uri", sa.Text),
        sa.column("policy", sa.String),
        sa.column("reader", sa.String),
        sa.column("template_set", sa.String),
        sa.column("template_set_hash", sa.String),
        sa.column("run_id", sa.Integer),
        sa.column("extracted_at", UTCDateTime()),
    )


extracted_fields = _view("extracted_fields")
document_fields = _view("document_fields")
VIEW_COLUMNS = tuple(c.name for c in extracted_fields.columns)
