"""The document × field table: one row per document, the answer of each field in it.

Both the export (app/export.py) and the run's table artifact (app/run_report.py) start here.

    table = document_table(queries.field_answers(session, run_id=7))
    table.fields        # ["company", "date", "address", "total"]
    table.documents[0]  # DocumentRow(uri=..., sha256=..., answers={"total": {...}, ...})
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class DocumentRow:
    uri: str
    sha256: str
    answers: dict[str, dict] = field(default_factory=dict)  # field -> its document_fields row


@dataclass
class DocumentTable:
    fields: list[str]  # in the order they were first written: the template's, for one-page documents
    documents: list[DocumentRow]  # in the order they were first written


def document_table(rows: Iterable[dict]) -> DocumentTable:
    """Rows of document_fields in the order they were written (`queries.field_answers`).

    A document extracted more than once (another template set, policy or reader) keeps the
    latest answer of each field."""
    fields: dict[str, None] = {}  # an ordered set
    documents: dict[str, DocumentRow] = {}  # by sha256: one document under two names is one row
    for row in rows:
        fields.setdefault(row["field"])
        document = documents.setdefault(row["document_sha256"], DocumentRow(row["document_uri"], row["document_sha256"]))
        document.answers[row["field"]] = row  # later rows win
    return DocumentTable(list(fields), list(documents.values()))
