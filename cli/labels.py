"""`cropvlm labels`: import gold labels, correct one, list the current ones.

    cropvlm labels import LABELS.jsonl --source DIR_OR_S3_URI [--reviewer NAME] [--heldout-percent 30]
    cropvlm labels set --document URI_OR_SHA256 --field F --answer A [--page N] --reviewer NAME
    cropvlm labels list [--split train|heldout] [--limit N]

Exit status 0 on success, 2 on bad input (every problem is listed; nothing is written).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CELL_WIDTH = 48  # longer cells are cut with an ellipsis in printed tables


def add_commands(commands: argparse._SubParsersAction) -> None:
    labels = commands.add_parser("labels", help="gold labels: import, correct, list")
    sub = labels.add_subparsers()

    imp = sub.add_parser("import", help="import a labels.jsonl (doc, field, answer[, question, page, box, type])")
    imp.add_argument("labels", metavar="LABELS.jsonl")
    imp.add_argument("--source", required=True, metavar="DIR_OR_S3_URI",
                     help="where the documents are: each 'doc' is a key relative to it")
    imp.add_argument("--reviewer", help="who made the labels")
    imp.add_argument("--heldout-percent", type=int, default=30, metavar="P",
                     help="share of new documents held out from training (default 30; never changes a recorded split)")
    add_database_option(imp)
    imp.set_defaults(handler=_import)

    set_ = sub.add_parser("set", help="correct (or add) one label; the old one stays in the history")
    set_.add_argument("--document", required=True, metavar="URI_OR_SHA256",
                      help="document uri as stored, or its sha256 (a unique prefix of 8+ digits will do)")
    set_.add_argument("--field", required=True)
    set_.add_argument("--answer", required=True)
    set_.add_argument("--page", type=int, help="1-based page (default: whichever page holds the value)")
    set_.add_argument("--question", help="default: the field's question from earlier labels")
    set_.add_argument("--reviewer", required=True)
    add_database_option(set_)
    set_.set_defaults(handler=_set)

    ls = sub.add_parser("list", help="current labels (latest per document, page and field)")
    ls.add_argument("--split", choices=("train", "heldout"))
    ls.add_argument("--limit", type=int, metavar="N")
    add_database_option(ls)
    ls.set_defaults(handler=_list)


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", metavar="URL",
                        help="SQLAlchemy URL (default: $DATABASE_URL or sqlite:///.cropvlm/cropvlm.db)")


@contextmanager
def session_scope(database_url: str | None) -> Iterator:
    """One transaction on a database brought to the latest schema first."""
    from storage.db import make_engine, make_session_factory, prepare_database
    from storage.settings import Settings

    url = database_url or Settings().database_url
    prepare_database(url)
    engine = make_engine(url)
    try:
        with make_session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


def fail(command: str, problems: Sequence[str]) -> int:
    print(f"cropvlm {command}: nothing written:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 2


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    for row in [list(headers), ["-" * w for w in widths], *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: object) -> str:
    text = "" if value is None else str(value).replace("\n", " ")
    if len(text) <= CELL_WIDTH:
        return text
    if text.startswith(("/", "s3://")):  # a path: its end names the document
        return "…" + text[1 - CELL_WIDTH :]
    return text[: CELL_WIDTH - 1] + "…"


def _import(args: argparse.Namespace) -> int:
    from cropvlm.errors import LabelError

    path = Path(args.labels)
    if not 0 <= args.heldout_percent <= 100:
        return fail("labels import", [f"--heldout-percent must be 0-100, got {args.heldout_percent}"])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return fail("labels import", [f"{path}: cannot read: {exc}"])
    from cropvlm.labels import parse_labels
    from storage.labels import import_labels

    try:
        labels = parse_labels(text, origin=str(path))
    except LabelError as exc:
        return fail("labels import", exc.problems)
    documents, problems = _read_documents(args.source, [label.doc for label in labels])
    if problems:
        return fail("labels import", problems)

    from storage import queries

    try:
        with session_scope(args.database_url) as session:
            ids = {
                doc: queries.upsert_document(session, page_count=None, **fields)
                for doc, fields in documents.items()
            }
            result = import_labels(
                session, labels, resolve_document=ids.get, source=f"import:{path.name}",
                reviewer=args.reviewer, heldout_percent=args.heldout_percent,
            )
    except LabelError as exc:
        return fail("labels import", exc.problems)
    kept = f", {result.kept_corrections} of them kept a later correction" if result.kept_corrections else ""
    print(f"imported {result.imported} labels, {result.unchanged} unchanged{kept}; "
          f"{result.documents} documents: {result.train} train, {result.heldout} heldout")
    return 0


def _read_documents(source: str, docs: Sequence[str]) -> tuple[dict[str, dict], list[str]]:
    """sha256, uri, media type and size of every document, or every problem reading them."""
    from cropvlm.errors import CropVLMError
    from cropvlm.render import sniff_media_type
    from storage.errors import ObjectNotFoundError, StorageError
    from storage.objectstore import open_store

    try:
        store = open_store(source)
        next(iter(store.list()), None)  # a missing folder or bucket is one problem, not one per document
    except StorageError as exc:
        return {}, [f"source {source}: {exc}"]
    documents, problems = {}, []
    for doc in dict.fromkeys(docs):
        try:
            data = store.read(doc)
        except ObjectNotFoundError:
            problems.append(f"document {doc!r} is not in {source}")
            continue
        except StorageError as exc:
            problems.append(f"document {doc!r}: {exc}")
            continue
        try:
            media_type = sniff_media_type(data)
        except CropVLMError:
            media_type = "application/octet-stream"
        documents[doc] = dict(sha256=hashlib.sha256(data).hexdigest(), uri=store.uri(doc),
                              media_type=media_type, size_bytes=len(data))
    return documents, problems


def _set(args: argparse.Namespace) -> int:
    from cropvlm.errors import LabelError
    from storage.labels import current_label, find_document, set_label

    try:
        with session_scope(args.database_url) as session:
            document_id = find_document(session, args.document)
            if document_id is None and "://" not in args.document:  # a local path as typed
                document_id = find_document(session, os.path.abspath(args.document))
            if document_id is None:
                return fail("labels set", [
                    f"unknown document {args.document!r}: give its uri as stored "
                    "(see `cropvlm labels list`) or its sha256"])
            before = current_label(session, document_id, args.field.strip(), args.page)
            set_label(session, document_id=document_id, field=args.field, answer=args.answer,
                      page_number=args.page, reviewer=args.reviewer, question=args.question)
            after = current_label(session, document_id, args.field.strip(), args.page)
    except LabelError as exc:
        return fail("labels set", exc.problems)
    page = "" if after.page_number is None else f" page {after.page_number}"
    was = "new" if before is None else f"was {before.answer!r}"
    print(f"{after.uri}{page} {after.field}: {after.answer!r} ({was}; label {after.label_id} by {after.reviewer})")
    return 0


def _list(args: argparse.Namespace) -> int:
    from storage.labels import current_labels

    if args.limit is not None and args.limit < 1:
        return fail("labels list", [f"--limit must be >= 1, got {args.limit}"])
    with session_scope(args.database_url) as session:
        rows = current_labels(session, split=args.split, limit=args.limit)
    if not rows:
        print("no labels" + (f" in the {args.split} split" if args.split else ""))
        return 0
    print_table(
        ("document", "split", "page", "field", "answer", "source", "reviewer"),
        [(r.uri, r.split, r.page_number, r.field, r.answer, r.source, r.reviewer) for r in rows],
    )
    return 0
