"""`cropvlm export`: the document × field table of a run, a source or a date range, to a file.

    cropvlm export --run 7 --out results.xlsx
    cropvlm export --source s3://acme-docs/incoming/ --since 2026-12-01 --until 2026-12-31 --out dec.parquet

Exit status 0 when the file is written (also with no documents, said on stderr), 2 on a bad
option or an unreachable database.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cli.labels import add_database_option


def add_commands(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export", help="one row per document, a column per field (answer, confidence, needs_review): "
                       "CSV, Excel or Parquet")
    export.add_argument("--out", required=True, metavar="FILE", help="results.csv, results.xlsx or results.parquet")
    export.add_argument("--run", type=int, metavar="N", help="answers written by run N (extraction_runs.id)")
    export.add_argument("--source", metavar="PREFIX", help="documents under this folder or s3://bucket/prefix")
    export.add_argument("--since", type=_since, metavar="DATE", help="extracted at or after (ISO date or time, UTC)")
    export.add_argument("--until", type=_until, metavar="DATE",
                        help="extracted before (ISO time, UTC; a date includes that whole day)")
    add_database_option(export)
    export.set_defaults(handler=_export)


def _since(text: str) -> datetime:
    """ISO date or date-time; naive means UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or time (2026-12-01, 2026-12-01T08:00)") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _until(text: str) -> datetime:
    """As _since, but a bare date (2026-12-31) includes that whole day."""
    moment = _since(text)
    return moment + timedelta(days=1) if len(text) == len("2026-12-31") else moment


def _uri_prefix(source: str | None) -> str | None:
    """Document URIs are s3://bucket/key or absolute paths: a local folder becomes its absolute path."""
    if not source or source.startswith("s3://"):
        return source
    from storage.objectstore import local_path

    path = Path(local_path(source)).expanduser().resolve()
    return f"{path}/" if path.is_dir() else str(path)


def _export(args: argparse.Namespace) -> int:
    from app.export import check_output, export_fields
    from storage.db import prepare_database
    from storage.errors import DatabaseUnavailableError
    from storage.settings import Settings

    try:
        out = check_output(args.out)
    except ValueError as exc:
        print(f"cropvlm export: {exc}", file=sys.stderr)
        return 2
    url = args.database_url or Settings().database_url
    try:
        prepare_database(url)
    except DatabaseUnavailableError as exc:
        print(f"cropvlm export: {exc}", file=sys.stderr)
        return 2
    frame = export_fields(url, out, run_id=args.run, uri_prefix=_uri_prefix(args.source), since=args.since,
                          until=args.until)
    fields = (len(frame.columns) - 2) // 3
    print(f"wrote {out}: {len(frame)} documents, {fields} fields")
    if frame.empty:
        print("cropvlm export: no documents match the selection", file=sys.stderr)
    return 0

