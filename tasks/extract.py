"""Prefect tasks of the extract flow: thin adapters around app/extract.py and storage/.

Only I/O tasks retry. Inside `extract_batch` only the model call holds the device slot
(tasks/device.py), so reading, rendering and persisting of other batches run meanwhile.
Tasks return ids, keys and small dicts; images never travel between tasks.
"""

from __future__ import annotations

from dataclasses import asdict

from prefect import task

from app import run_report, runs
from app.extract import ExtractJob, Models, extract_documents
from app.params import ExtractParams
from app.run_report import RunReport
from app.resources import get_session_factory, get_store
from storage import queries
from storage.errors import StoreNotFoundError
from storage.retry import retry_database
from tasks.device import GPU_TAG, model_slot


def _retry_unless_missing(task, task_run, state) -> bool:
    """Retry transient storage errors; a missing bucket or folder will not appear by waiting."""
    try:
        state.result()
    except StoreNotFoundError:
        return False
    except Exception:  # noqa: BLE001 - any other failure is worth the retry policy
        return True
    return True


@task(retries=3, retry_delay_seconds=[2, 10, 30], retry_condition_fn=_retry_unless_missing)
def list_documents(source: str) -> list[str]:
    """Keys of every (non-hidden) object under the source, in a stable order."""
    return [info.key for info in get_store(source).list()]


@task(retries=2, retry_delay_seconds=5)
def open_run(
    params: ExtractParams, templates, models: Models, *, flow_run_id: str | None, parameters: dict,
    parent_run_id: int | None = None,
) -> int:
    """Start the run (holding a lease; a shard of `parent_run_id` if given) and mark runs whose
    lease expired `crashed`."""
    return runs.open_run(params, templates, models, flow_run_id=flow_run_id, parameters=parameters,
                         parent_run_id=parent_run_id)


@task(tags=[GPU_TAG])
def extract_batch(job: ExtractJob, keys: list[str], gpu_limit: str | None = None) -> dict:
    """One batch of documents, the model call under `gpu_limit`; per-document failures are
    recorded, not raised."""
    outcome = extract_documents(job, keys, model_slot=model_slot(gpu_limit))
    return asdict(outcome)


@task  # retried inside, through a database outage of up to half a minute
def close_run(database_url: str, run_id: int, *, status: str, error: str | None = None, **counters) -> dict:
    def close() -> dict:
        with get_session_factory(database_url).begin() as session:
            queries.finish_run(session, run_id, status=status, error=error, **counters)
            return queries.run_summary(session, run_id)

    return retry_database(close, what=f"close run {run_id}")


@task
def report_run(database_url: str, summary: dict) -> RunReport:
    return run_report.report_run(database_url, summary)
