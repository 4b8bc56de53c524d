"""Export the document × field table to a file a finance team opens: CSV, Excel or Parquet.

    export_fields(database_url, "results.xlsx", run_id=7)
    export_fields(database_url, "march.parquet", uri_prefix="s3://docs/incoming/", since=..., until=...)

Columns: document_uri, then for each field `<field>` (the answer as read),
`<field>_confidence` (0-1) and `<field>_needs_review`, then document_sha256.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from app.document_table import DocumentTable, document_table
from app.resources import get_session_factory
from storage import queries

WRITERS = {
    ".csv": lambda frame, path: frame.to_csv(path, index=False),
    ".xlsx": lambda frame, path: frame.to_excel(path, index=False, sheet_name="fields"),
    ".parquet": lambda frame, path: frame.to_parquet(path, index=False),
}


def check_output(path: str | Path) -> Path:
    """The output path if its suffix names a format we write; ValueError saying which do."""
    path = Path(path)
    if path.suffix.lower() not in WRITERS:
        raise ValueError(f"{path}: unknown output format {path.suffix!r}; use one of {', '.join(WRITERS)}")
    return path


def export_fields(
    database_url: str,
    out: str | Path,
    *,
    run_id: int | None = None,
    uri_prefix: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Write the selected documents' table to `out` (format by suffix) and return it."""
    out = check_output(out)
    with get_session_factory(database_url).begin() as session:
        rows = queries.field_answers(session, run_id=run_id, uri_prefix=uri_prefix, since=since, until=until)
    frame = export_frame(document_table(rows))
    out.parent.mkdir(parents=True, exist_ok=True)
    WRITERS[out.suffix.lower()](frame, out)
    return frame


def export_frame(table: DocumentTable) -> pd.DataFrame:
    columns = ["document_uri"]
    for name in table.fields:
        columns += [name, f"{name}_confidence", f"{name}_needs_review"]
    columns.append("document_sha256")
    records = []
    for document in table.documents:
        record = {"document_uri": document.uri, "document_sha256": document.sha256}
        for name, row in document.answers.items():
            record.update({name: row["answer"], f"{name}_confidence": row["confidence"],
                           f"{name}_needs_review": bool(row["needs_review"])})
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=columns)
    # A field a document lacks (another template) is missing, not False: keep the flags nullable.
    flags = [f"{name}_needs_review" for name in table.fields]
    frame[flags] = frame[flags].astype("boolean")
    return frame
