"""`cropvlm` command line.

    cropvlm extract SOURCE --templates templates/receipt.yaml [--policy full] [--reader ocr:rapidocr-spaced@768]
    cropvlm db upgrade
    cropvlm demo
    cropvlm evaluate FOLDER|--synthetic N [--templates YAML] [--limit N] [--out DIR] [--readers SPEC ...] [--policies SPEC ...]
    cropvlm labels import LABELS.jsonl --source DIR_OR_S3_URI | labels set ... | labels list   (cli/labels.py)
    cropvlm policies list | promote VERSION | reject VERSION --note TEXT                         (cli/policies.py)
    cropvlm train-head FOLDER ... | --synthetic N --out DIR [--heldout FOLDER]                  (cli/head.py)
    cropvlm retrain [--synthetic N] [--init scratch|promoted] [--judge SPEC] [--train JSON]       (cli/retrain.py)

`extract` exits 0 when every document was extracted or skipped, 1 when any document failed
(the failures are listed and recorded in `run_documents`), 2 when the run could not start,
130 on SIGINT and 143 on SIGTERM (the run is marked `interrupted`, its documents released).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from app.params import EvaluateParams, ExtractParams  # noqa: E402 - after the environment defaults above
from cli.options import add_options, fields_from  # noqa: E402
from cropvlm.errors import CropVLMError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    return args.handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cropvlm", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers()

    extract = commands.add_parser("extract", help="extract fields from every document under SOURCE")
    extract.add_argument("source", help="s3://bucket/prefix or a local folder")
    add_options(extract, ExtractParams,
                ["templates", "policy", "reader", "dpi", "max_pages", "batch_documents", "review_below",
                 "lease_seconds"],
                templates={"required": True, "metavar": "YAML"})
    extract.add_argument("--no-progress", action="store_true", help="no progress bar")
    extract.set_defaults(handler=_extract)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers()
    upgrade = db_commands.add_parser("upgrade", help="apply migrations (alembic upgrade head)")
    upgrade.set_defaults(handler=_db_upgrade)

    demo = commands.add_parser("demo", help="generate sample documents and extract them on embedded defaults")
    demo.add_argument("--folder", default="demo", help="where the sample documents go")
    demo.add_argument("--documents", type=int, default=6, help="documents per kind")
    demo.add_argument("--policy", default="default", help="crop policy spec (default: the shipped trained policy)")
    demo.set_defaults(handler=_demo)

    evaluate = commands.add_parser(
        "evaluate", help="accuracy, seconds and pixels per answer of readers x crop policies on labelled documents")
    evaluate.add_argument("folder", nargs="?", help="folder of documents with a labels.jsonl (doc, field, question, answer)")
    add_options(evaluate, EvaluateParams, ["synthetic", "seed", "templates", "limit", "out", "readers", "policies",
                                           "full_resolution", "batch_documents", "dpi"],
                templates={"metavar": "YAML"}, out={"metavar": "DIR"})
    evaluate.set_defaults(handler=_evaluate)

    from cli import head, labels, policies, retrain  # light modules: storage is imported when a command runs

    head.add_commands(commands)
    labels.add_commands(commands)
    policies.add_commands(commands)
    retrain.add_commands(commands)
    return parser


def _extract(args: argparse.Namespace) -> int:
    # SIGTERM unwinds like Ctrl-C, so the run is marked interrupted and, at exit, the
    # temporary Prefect server is stopped instead of orphaned.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        summary = run_extract(**fields_from(args, ExtractParams), progress=not args.no_progress)
    except KeyboardInterrupt as exc:
        name = str(exc) or "SIGINT"
        print(f"cropvlm: stopped by {name}: the run is marked interrupted and its documents released; "
              "run the same command again to extract the rest", file=sys.stderr)
        return 128 + signal.Signals[name].value
    finally:
        signal.signal(signal.SIGTERM, previous)
    if summary is None:
        return 2
    print_summary(summary)
    return 1 if summary["documents_failed"] else 0


def _raise_interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_extract(source: str, templates: list[str], *, progress: bool = True, **parameters) -> dict | None:
    """Run the extract flow in-process (Prefect's ephemeral API unless PREFECT_API_URL is set)."""
    from storage.db import prepare_database
    from storage.errors import DatabaseUnavailableError, StorageError

    try:  # before the flow: an unreachable database is one line, not a failed flow run
        prepare_database(parameters.get("database_url"))
    except DatabaseUnavailableError as exc:
        print(f"cropvlm: cannot start: {exc}", file=sys.stderr)
        return None
    from flows import extract as extract_module

    bar = _progress_bar() if progress else None
    if bar is not None:
        extract_module.progress_listeners.append(bar.update_to)
    try:
        return extract_module.extract(source=source, templates=templates, **parameters)
    except (CropVLMError, StorageError, ValueError, OSError) as exc:
        print(f"cropvlm: run failed: {exc}", file=sys.stderr)
        return None
    finally:
        if bar is not None:
            extract_module.progress_listeners.remove(bar.update_to)
            bar.close()


def print_summary(summary: dict) -> None:
    print(
        f"\nrun {summary['id']} {summary['status']}: {summary['documents_total']} documents, "
        f"{summary['documents_extracted']} extracted, {summary['documents_skipped']} skipped, "
        f"{summary['documents_failed']} failed; {summary['pages_processed']} pages, "
        f"{summary['answers_written']} answers in {summary['wall_seconds']:.1f} s"
    )
    for failure in summary.get("failures", []):
        print(f"  FAILED {failure['uri']}: {failure['error']}")


def _db_upgrade(args: argparse.Namespace) -> int:
    from storage.db import upgrade_database
    from storage.settings import Settings

    settings = Settings()
    upgrade_database(settings.database_url)
    print(f"database at head: {settings.safe_database_url()}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from app.evaluate import evaluate_documents

    try:
        params = EvaluateParams(**fields_from(args, EvaluateParams))
    except ValueError as exc:
        print(f"cropvlm: {exc}", file=sys.stderr)
        return 2
    if (params.folder is None) == (not params.synthetic):
        print("cropvlm: evaluate needs a FOLDER or --synthetic N (not both)", file=sys.stderr)
        return 2
    try:
        result = evaluate_documents(params, progress=lambda line: print(line, file=sys.stderr, flush=True))
    except (CropVLMError, ValueError, OSError) as exc:
        print(f"cropvlm: evaluation failed: {exc}", file=sys.stderr)
        return 2
    print(result.markdown)
    print("written: " + ", ".join(str(p) for p in result.paths.values()))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    return run_demo(args.folder, args.documents, args.policy)


def _progress_bar():
    from tqdm import tqdm

    class _Bar(tqdm):
        def update_to(self, done: int, total: int) -> None:
            self.total = total
            self.update(done - self.n)

    return _Bar(unit="doc", desc="extract", file=sys.stderr, dynamic_ncols=True)


if __name__ == "__main__":
    sys.exit(main())
