"""The `extract` flow: answer every question template for every document under a source.

    cropvlm extract ./invoices --templates templates/invoice.yaml     # by hand
    prefect deploy --name extract                                      # scheduled (prefect.yaml)

list the source -> open a run -> document batches (read, identify by sha256, skip what
was extracted before, render, crop-then-answer, persist) -> close the run with counts and
timings -> Prefect artifacts: progress while it runs, a table of extracted fields at the end.

Batches run two at a time; only their model calls take turns, on the global concurrency
limit named by `gpu_limit` (`prefect gcl create gpu --limit 1`; None: no guard).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prefect import flow, get_client, get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.exceptions import ObjectNotFound
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from app.extract import ExtractJob
from app.resources import get_policy, get_reader, resolve_policy
from cropvlm.render import RenderConfig
from cropvlm.specs import DEFAULT_READER
from cropvlm.templates import load_template_set
from storage.db import prepare_database
from storage.settings import Settings
from tasks.extract import close_run, extract_batch, fetch_run_fields, list_documents, open_run

# In-process observers of progress (the CLI's progress bar): called with (done, total).
progress_listeners: list[Callable[[int, int], None]] = []


@flow(name="extract", task_runner=ThreadPoolTaskRunner(max_workers=2))
def extract(
    source: str,
    templates: list[str] = ["templates/receipt.yaml"],  # noqa: B006 - Prefect needs a literal default
    policy: str = "promoted",
    reader: str = DEFAULT_READER,
    dpi: int = 150,
    max_pages: int = 50,
    max_pixels: int = 40_000_000,
    batch_documents: int = 8,
    database_url: str | None = None,
    artifacts_uri: str | None = None,
    gpu_limit: str | None = "gpu",
) -> dict:
    """Returns the run summary: counts of extracted/skipped/failed documents and timings."""
    started = time.perf_counter()
    logger = get_run_logger()
    settings = Settings()
    database_url = database_url or settings.database_url
    artifacts_uri = artifacts_uri or settings.artifacts_uri
    template_set = load_template_set(templates)  # a bad template fails the run before any work
    render = RenderConfig(dpi=dpi, max_pages=max_pages, max_pixels=max_pixels)
    if batch_documents < 1:
        raise ValueError("batch_documents must be >= 1")
    prepare_database(database_url)
    spec = policy
    policy = resolve_policy(policy, database_url)  # "promoted" -> the registry's promoted version
    policy_version, reader_version = get_policy(policy).version, get_reader(reader).version
    gpu_limit = _existing_limit(gpu_limit, logger)

    run_id = open_run(
        database_url, flow_run_id=str(flow_run.id) if flow_run.id else None, source=source,
        templates=template_set, policy=policy_version, reader=reader_version,
        parameters={"policy_spec": spec, "policy_resolved": policy, "reader_spec": reader, "dpi": dpi, "max_pages": max_pages,
                    "max_pixels": max_pixels, "batch_documents": batch_documents, "templates": templates,
                    "gpu_limit": gpu_limit},
    )
    job = ExtractJob(run_id, source, template_set, policy, reader, render, database_url, artifacts_uri)
    try:
        keys = list_documents(source)
        counts = _run_batches(job, keys, batch_documents, gpu_limit, logger)
    except Exception as exc:
        close_run(database_url, run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    counts["wall_seconds"] = time.perf_counter() - started
    status = "completed_with_failures" if counts["documents_failed"] else "completed"
    model_busy = _union_seconds(counts.pop("model_intervals"))
    summary = close_run(database_url, run_id, status=status, **counts)
    summary["model_busy_seconds"] = model_busy  # not stored: for benchmarks and logs
    rows = fetch_run_fields(database_url, run_id)
    if rows:
        create_table_artifact(rows, key="extracted-fields", description=f"Fields extracted by run {run_id}")
    logger.info("run %s %s: %s", run_id, status, {k: summary[k] for k in sorted(summary) if k.startswith("documents")})
    return summary


def _existing_limit(name: str | None, logger) -> str | None:
    """`name` if that global concurrency limit exists, else None (no guard).

    Without the limit (a laptop, the CLI's ephemeral API) every model call would log
    Prefect's "limit does not exist" warning; this says it once, with the fix.
    """
    if name is None:
        return None
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            logger.info("no global concurrency limit %r: model calls of parallel batches may overlap "
                        "(serialise them with `prefect gcl create %s --limit 1`)", name, name)
            return None
    return name


def _run_batches(job: ExtractJob, keys: list[str], batch_documents: int, gpu_limit: str | None, logger) -> dict:
    total = len(keys)
    progress_id = create_progress_artifact(0.0, key="extract-progress", description=f"{total} documents")
    batches = [keys[i : i + batch_documents] for i in range(0, total, batch_documents)]
    futures = [extract_batch.submit(job, batch, gpu_limit) for batch in batches]
    counts = {"documents_total": total, "documents_extracted": 0, "documents_skipped": 0,
              "documents_failed": 0, "pages_processed": 0, "answers_written": 0,
              "policy_seconds": 0.0, "reader_seconds": 0.0, "model_intervals": []}
    done = 0
    for future in futures:
        outcome = future.result()
        for document in outcome["documents"]:
            counts[f"documents_{document['status']}"] += 1
            counts["answers_written"] += document["answers"]
            if document["status"] == "failed":
                logger.warning("document failed: %s: %s", document["uri"], document["error"])
        counts["pages_processed"] += outcome["pages"]
        counts["policy_seconds"] += outcome["policy_seconds"]
        counts["reader_seconds"] += outcome["reader_seconds"]
        counts["model_intervals"] += outcome["model_intervals"]
        done += len(outcome["documents"])
        update_progress_artifact(progress_id, 100.0 * done / max(total, 1))
        for listener in progress_listeners:
            listener(done, total)
    if total == 0:
        update_progress_artifact(progress_id, 100.0)
    return counts


def _union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals: time during which any model ran."""
    busy, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            busy += stop - max(start, end)
            end = stop
    return busy
