"""The `extract` flow: answer every question template for every document under a source.

    cropvlm extract ./invoices --templates templates/invoice.yaml     # by hand
    prefect deploy --name extract                                      # scheduled (prefect.yaml)

list the source -> open a run -> document batches (read, identify by sha256, skip what
was extracted before, render, crop-then-answer, persist) -> close the run with counts and
timings -> Prefect artifacts: progress while it runs; at the end the run's summary, its
document × field table and its failures (app/run_report.py). A run with failed documents
ends in a Completed state named "Completed with failures".

Batches run two at a time; only their model calls take turns, on the global concurrency
limit named by `gpu_limit` (`prefect gcl create gpu --limit 1`; None: no guard).
With `shard_documents` set, the run lists the source streamed and hands shards of it to
flow runs of the `extract-shard` deployment on any worker of its pool (flows/fanout.py).
Parameters: `ExtractParams` (app/params.py), where their defaults and meaning are.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.runtime import flow_run
from prefect.states import Completed
from prefect.task_runners import ThreadPoolTaskRunner

from app.extract import ExtractJob, Models, resolve_models
from app.runs import interrupt_run, keep_alive
from app.params import ExtractParams, defaults
from app.run_report import RunReport, batch_name
from cropvlm.templates import load_template_set
from flows.fanout import run_shards
from storage.db import prepare_database
from tasks.device import existing_limit
from tasks.extract import close_run, extract_batch, list_documents, open_run, report_run

# In-process observers of progress (the CLI's progress bar): called with (done, total).
progress_listeners: list[Callable[[int, int], None]] = []
DEFAULT = defaults(ExtractParams)


@flow(name="extract", task_runner=ThreadPoolTaskRunner(max_workers=2))
def extract(
    source: str,
    templates: list[str] = DEFAULT.templates,
    policy: str = DEFAULT.policy,
    reader: str = DEFAULT.reader,
    dpi: int = DEFAULT.dpi,
    max_pages: int = DEFAULT.max_pages,
    max_pixels: int = DEFAULT.max_pixels,
    max_document_pixels: int = DEFAULT.max_document_pixels,
    batch_documents: int = DEFAULT.batch_documents,
    batch_pixels: int = DEFAULT.batch_pixels,
    document_seconds: float = DEFAULT.document_seconds,
    review_below: float = DEFAULT.review_below,
    database_url: str | None = DEFAULT.database_url,
    artifacts_uri: str | None = DEFAULT.artifacts_uri,
    gpu_limit: str | None = DEFAULT.gpu_limit,
    lease_seconds: int = DEFAULT.lease_seconds,
    shard_documents: int | None = DEFAULT.shard_documents,
    shard_deployment: str = DEFAULT.shard_deployment,
    shards_in_flight: int = DEFAULT.shards_in_flight,
) -> dict:
    """Returns the run summary: counts of documents by status, timings (in a Completed state
    named "Completed with failures" when any document failed; calling the flow returns the
    summary either way)."""
    params = ExtractParams(**locals())  # validated once: every step below reads the model
    started = time.perf_counter()
    logger = get_run_logger()
    template_set = load_template_set(params.templates)  # a bad template fails the run before any work
    prepare_database(params.database_url)
    models = resolve_models(params)  # once per run: "promoted" -> the registry's promoted version
    gpu_limit = existing_limit(params.gpu_limit, logger)

    run_id = open_run(params, template_set, models, flow_run_id=str(flow_run.id) if flow_run.id else None,
                      parameters=run_parameters(params, models, gpu_limit))
    job = ExtractJob(run_id, params, template_set, models)
    if params.shard_documents:
        return run_job(job, started, logger, lambda: run_shards(
            job, database_url=database_url, artifacts_uri=artifacts_uri, listeners=progress_listeners))
    return run_job(job, started, logger, lambda: run_batches(job, list_documents(params.source), gpu_limit, logger))


def run_parameters(params: ExtractParams, models: Models, gpu_limit: str | None) -> dict:
    """What the run records of its parameters: the specs as given and as resolved."""
    return {"policy_spec": params.policy, "policy_resolved": models.policy, "reader_spec": params.reader,
            "reader_resolved": models.reader,
            **params.model_dump(include={"dpi", "max_pages", "max_pixels", "batch_documents", "templates",
                                         "review_below", "lease_seconds", "shard_documents", "max_document_pixels",
                                         "batch_pixels", "document_seconds"}),
            "gpu_limit": gpu_limit}


def run_job(job: ExtractJob, started: float, logger, work: Callable[[], dict]) -> dict:
    """Run `work` (it returns the run's counts) under the run's lease, close the run and publish
    its report; the flow's return value. A failure closes the run `failed`, a signal `interrupted`."""
    run_id, params = job.run_id, job.params
    try:
        with keep_alive(job):  # the lease on the run and its documents
            counts = work()
    except Exception as exc:
        close_run(params.database_url, run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    except BaseException as exc:  # SIGTERM (Prefect's TerminationSignal), Ctrl-C: stop, release, re-raise
        interrupt_run(job, exc)
        raise
    counts["wall_seconds"] = time.perf_counter() - started
    status = "completed_with_failures" if counts["documents_failed"] else "completed"
    model_busy = _union_seconds(counts.pop("model_intervals"))
    counts.pop("documents_empty")  # no column in extraction_runs: the summary counts run_documents by status
    summary = close_run(params.database_url, run_id, status=status, **counts)
    summary["model_busy_seconds"] = model_busy  # not stored: for benchmarks and logs
    _publish(report_run(params.database_url, summary))
    by_status = summary["documents_by_status"]
    logger.info("run %s %s: %s", run_id, status, ", ".join(f"{n} {s}" for s, n in by_status.items()))
    if summary["documents_failed"]:
        return Completed(name="Completed with failures", data=summary)  # the name the UI shows
    return summary


def _publish(report: RunReport) -> None:
    create_markdown_artifact(report.summary, key="extract-summary", description="What the run did")
    if report.fields:
        create_table_artifact(report.fields, key="extracted-fields", description=report.fields_description)
    if report.failures:
        create_table_artifact(report.failures, key="extract-failures", description=report.failures_description)


def run_batches(job: ExtractJob, keys: list[str], gpu_limit: str | None, logger) -> dict:
    total, size = len(keys), job.params.batch_documents
    progress_id = create_progress_artifact(0.0, key="extract-progress", description=f"{total} documents")
    batches = [keys[i : i + size] for i in range(0, total, size)]
    futures = [extract_batch.with_options(task_run_name=batch_name(number, batch)).submit(job, batch, gpu_limit)
               for number, batch in enumerate(batches, 1)]
    counts = {"documents_total": total, "documents_extracted": 0, "documents_empty": 0, "documents_skipped": 0,
              "documents_failed": 0, "pages_processed": 0, "answers_written": 0,
              "policy_seconds": 0.0, "reader_seconds": 0.0, "model_intervals": []}
    done = 0
    for future in futures:
        outcome = future.result()
        for document in outcome["documents"]:
            counts[f"documents_{document['status']}"] += 1
            counts["answers_written"] += document["answers"]
            if document["status"] in ("failed", "empty"):
                logger.warning("document %s: %s: %s", document["status"], document["uri"], document["error"])
        counts["pages_processed"] += outcome["pages"]
        counts["policy_seconds"] += outcome["policy_seconds"]
        counts["reader_seconds"] += outcome["reader_seconds"]
        counts["model_intervals"] += outcome["model_intervals"]
        done += len(outcome["documents"])
        update_progress_artifact(progress_id, 100.0 * done / max(total, 1),
                                 description=f"{done} of {total} documents, {counts['documents_failed']} failed")
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
