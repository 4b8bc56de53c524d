"""`cropvlm` command line.

    cropvlm extract SOURCE --templates templates/receipt.yaml [--policy full] [--reader ocr:rapidocr-spaced@768]
    cropvlm export --out results.xlsx [--run N] [--source PREFIX] [--since DATE] [--until DATE]   (cli/export.py)
    cropvlm db upgrade
    cropvlm demo
    cropvlm evaluate FOLDER|--synthetic N [--templates YAML] [--limit N] [--out DIR] [--readers SPEC ...] [--policies SPEC ...]
    cropvlm labels import LABELS.jsonl --source DIR_OR_S3_URI | labels set ... | labels list   (cli/labels.py)
    cropvlm policies list | promote VERSION | reject VERSION --note TEXT                         (cli/policies.py)
    cropvlm train-head FOLDER ... | --synthetic N --out DIR [--heldout FOLDER]                  (cli/head.py)
    cropvlm retrain [--synthetic N] [--init scratch|promoted] [--judge SPEC] [--train JSON]       (cli/retrain.py)

`extract` exits 0 when every document was extracted, empty or skipped, 1 when any document
failed (the failures are listed and recorded in `run_documents`) or the run stopped on a
database or object-store outage, 2 when the run could not start (EXTRACT_EPILOG), 130 on
SIGINT and 143 on SIGTERM (the run is marked `interrupted`, its documents released).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from app.params import EvaluateParams, ExtractParams  # noqa: E402 - after the environment defaults above
from cli.options import add_options, fields_from  # noqa: E402
from cropvlm.errors import CropVLMError  # noqa: E402

EXTRACT_EPILOG = """\
exit status:
  0  every document extracted, empty or skipped as done before (empty ones listed as EMPTY)
  1  some documents failed (listed as FAILED, recorded in run_documents), or the database
     or object store went away mid-run: the documents not done are left for the next run
  2  the run could not start: a mistake in the templates, a spec or the source, a source
     that cannot be listed (S3 endpoint unreachable, no such bucket, refused credentials:
     found within ~10 s), or an unreachable database (one line each; --debug adds the
     traceback)
  130, 143  stopped by SIGINT or SIGTERM: the run is marked interrupted

environment: DATABASE_URL (or --database-url), CROPVLM_ARTIFACTS_URI (or --artifacts-uri),
AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY for S3, PREFECT_API_URL for a
Prefect server (unset: a temporary one that ends with this command, even a killed one)."""


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

    extract = commands.add_parser("extract", help="extract fields from every document under SOURCE",
                                  epilog=EXTRACT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    extract.add_argument("source", help="s3://bucket/prefix or a local folder")
    add_options(extract, ExtractParams,
                ["templates", "policy", "reader", "dpi", "max_pages", "batch_documents", "review_below",
                 "document_seconds", "artifacts_uri", "lease_seconds", "shard_documents", "shard_deployment",
                 "shards_in_flight"],
                templates={"required": True, "metavar": "YAML"}, artifacts_uri={"metavar": "URI"})
    # Not a flow parameter: Prefect would store a password in it. It becomes DATABASE_URL for the run.
    extract.add_argument("--database-url", dest="environment_database_url", metavar="URL",
                         help="SQLAlchemy URL for this run (default: $DATABASE_URL, else sqlite:///.cropvlm/cropvlm.db)")
    extract.add_argument("--no-progress", action="store_true", help="no progress bar")
    extract.add_argument("--debug", action="store_true", help="tracebacks with the error messages")
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

    from cli import export, head, labels, policies, retrain  # light modules: storage is imported when a command runs

    export.add_commands(commands)
    head.add_commands(commands)
    labels.add_commands(commands)
    policies.add_commands(commands)
    retrain.add_commands(commands)
    return parser


def _extract(args: argparse.Namespace) -> int:
    from unittest import mock

    environment = {"DATABASE_URL": args.environment_database_url} if args.environment_database_url else {}
    # SIGTERM unwinds like Ctrl-C, so the run is marked interrupted and the temporary
    # Prefect server is stopped.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with mock.patch.dict(os.environ, environment):  # for this run only: main() may be called again
            if _refused(args):
                return 2
            summary = run_extract(**fields_from(args, ExtractParams), progress=not args.no_progress,
                                  debug=args.debug)
    except KeyboardInterrupt as exc:
        name = str(exc) or "SIGINT"
        print(f"cropvlm: stopped by {name}: the run is marked interrupted and its documents released; "
              "run the same command again to extract the rest", file=sys.stderr)
        return 128 + signal.Signals[name].value
    finally:
        signal.signal(signal.SIGTERM, previous)
    if isinstance(summary, int):
        return summary
    print_summary(summary)
    return 1 if summary["documents_failed"] else 0


def _raise_interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _refused(args: argparse.Namespace) -> bool:
    """Print each mistake that stops the run before it starts, one line each (--debug: and its
    traceback); True if there was any."""
    from pydantic import ValidationError

    from app.preflight import Problem, check_extract

    try:
        params = ExtractParams(**fields_from(args, ExtractParams))
    except ValidationError as exc:
        problems = [Problem(f"--{str(error['loc'][0]).replace('_', '-')}: {error['msg']}" if error["loc"]
                            else error["msg"], exc) for error in exc.errors()]
    else:
        problems = check_extract(params.source, params.templates, params.policy, params.reader)
    for problem in problems:
        print(f"cropvlm: cannot start: {problem.message}", file=sys.stderr)
        if args.debug and problem.error is not None:
            traceback.print_exception(problem.error)
    return bool(problems)


def run_extract(source: str, templates: list[str], *, progress: bool = True, debug: bool = False,
                **parameters) -> dict | int:
    """Run the extract flow in-process (a temporary Prefect API server unless PREFECT_API_URL is set).
    The run's summary, or the exit status when there is none: 2 when it could not start, 1 when
    the database or the object store went away mid-run (the documents not done are left for
    the next run)."""
    from storage.db import prepare_database
    from storage.errors import DatabaseUnavailableError, StorageError, StoreUnavailableError

    try:  # before the flow: an unreachable database is one line, not a failed flow run
        prepare_database(parameters.get("database_url"))
    except DatabaseUnavailableError as exc:
        print(f"cropvlm: cannot start: {exc}", file=sys.stderr)
        return 2
    from flows import extract as extract_module
    from flows.temporary_server import temporary_api_server

    bar = _progress_bar() if progress else None
    if bar is not None:
        extract_module.progress_listeners.append(bar.update_to)
    try:
        with temporary_api_server():  # a server that a SIGKILLed CLI does not leave behind
            return extract_module.extract(source=source, templates=templates, **parameters)
    except (DatabaseUnavailableError, StoreUnavailableError) as exc:
        print(f"cropvlm: run stopped: {exc}; run the same command again to extract the rest", file=sys.stderr)
        if debug:
            traceback.print_exc()
        return 1
    except (CropVLMError, StorageError, ValueError, OSError) as exc:
        print(f"cropvlm: run failed: {exc}", file=sys.stderr)
        if debug:
            traceback.print_exc()
        return 2
    finally:
        if bar is not None:
            extract_module.progress_listeners.remove(bar.update_to)
            bar.close()


def print_summary(summary: dict) -> None:
    print(
        f"\nrun {summary['id']} {summary['status']}: {summary['documents_total']} documents, "
        f"{summary['documents_extracted']} extracted, {summary['documents_skipped']} skipped, "
        f"{summary['documents_failed']} failed, {summary['documents_by_status']['empty']} empty; "
        f"{summary['pages_processed']} pages, {summary['answers_written']} answers in {summary['wall_seconds']:.1f} s"
    )
    for failure in summary.get("failures", []):
        print(f"  FAILED {failure['uri']}: {failure['error']}")
    for empty in summary.get("empty", []):  # a warning: saved, not a failure (exit status 0)
        print(f"  EMPTY {empty['uri']}: {empty['error']}")


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
