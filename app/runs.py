"""A run's life in the database: opened holding a lease (and sweeping the runs whose lease
expired to `crashed`), kept alive by a heartbeat while its batches work, marked `interrupted`
on a signal. Plain Python: flows/extract.py calls these around the batches of app/extract.py.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from app.params import ExtractParams
from app.resources import get_session_factory
from cropvlm.templates import TemplateSet
from storage import claims, queries
from storage.retry import retry_database, short_reason

if TYPE_CHECKING:
    from app.extract import ExtractJob, Models

log = logging.getLogger(__name__)

_stopping: set[int] = set()  # runs interrupted in this process: their batches stop between documents


def open_run(params: ExtractParams, templates: TemplateSet, models: Models, *, flow_run_id: str | None,
             parameters: dict, parent_run_id: int | None = None) -> int:
    """Start a run (a shard of `parent_run_id` if given) holding a lease, and mark `crashed`
    the runs whose lease expired."""
    with get_session_factory(params.database_url).begin() as session:
        queries.ensure_template_set(session, templates.content_hash, templates.name, templates.canonical_json())
        run_id = queries.start_run(
            session, flow_run_id=flow_run_id, source=params.source, template_set_hash=templates.content_hash,
            policy=models.policy_version, reader=models.reader_version, parameters=parameters,
            parent_run_id=parent_run_id,
        )
        claims.renew_lease(session, run_id, params.lease_seconds)
        for stale in claims.sweep_stale_runs(session, by_run=run_id, lease_seconds=params.lease_seconds):
            log.warning("run %s stopped renewing its lease: marked crashed", stale)
    return run_id


@contextmanager
def keep_alive(job: ExtractJob) -> Iterator[None]:
    """Renew the run's lease and claims every third of a lease while the block runs."""
    sessions, done = get_session_factory(job.params.database_url), threading.Event()

    def beat() -> None:
        while not done.wait(job.params.lease_seconds / 3):
            try:
                with sessions.begin() as session:
                    claims.renew_lease(session, job.run_id, job.params.lease_seconds)
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried next time, not fatal
                log.warning("run %s: lease not renewed: %s", job.run_id, short_reason(exc))

    thread = threading.Thread(target=beat, name=f"lease-{job.run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def interrupt_run(job: ExtractJob, cause: BaseException) -> None:
    """Stop the run's batches at their next document, mark it `interrupted`, release its claims.

    `cause`: Prefect's TerminationSignal (SIGTERM, its `.signal`) or a KeyboardInterrupt."""
    stop(job.run_id)
    sessions = get_session_factory(job.params.database_url)
    number = getattr(cause, "signal", None)
    name = signal.Signals(number).name if number else str(cause) or type(cause).__name__
    reason = f"interrupted ({name}); a rerun extracts the rest"

    def finish() -> None:
        with sessions.begin() as session:
            queries.finish_run(session, job.run_id, status="interrupted", error=reason)

    retry_database(finish, what=f"mark run {job.run_id} interrupted", delays=(0.5, 1, 2))


def stop(run_id: int) -> None:
    """The run's batches in this process stop at their next document."""
    _stopping.add(run_id)


def stopping(run_id: int) -> bool:
    return run_id in _stopping
