"""The parent's side of a sharded extract run: submit each shard as a flow run of the shard
deployment (any worker of its pool takes it), watch them, re-submit what a lost shard left.

A shard is lost when Prefect ends its flow run in another state than Completed (Failed,
Crashed, Cancelled), or when its run's lease in the database ran out while Prefect still
shows it running (the worker's machine died: no one is left to tell Prefect); such a flow
run is set Crashed. A shard lost `MAX_ATTEMPTS` times fails the run. Decisions on the
database side are app/fanout.py's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment
from prefect.runtime import flow_run
from prefect.settings import PREFECT_UI_URL
from prefect.states import Crashed

from app import fanout
from app.extract import ExtractJob
from app.fanout import Shard, ShardLostError
from app.run_report import batch_name

POLL_S = 2.0  # between looks at the shards' states
MAX_ATTEMPTS = 3  # a shard lost this often (a worker dying each time, or a failing shard flow) fails the run
READ_LIMIT = 200  # flow runs per API call (the server's default page)


@dataclass
class _Submitted:
    shard: Shard
    name: str
    state: str = "Scheduled"


def run_shards(job: ExtractJob, *, database_url: str | None, artifacts_uri: str | None,
               listeners: list[Callable[[int, int], None]]) -> dict:
    """Extract the source's documents in shards on the pool; the run's counts, totalled from
    its shards. `database_url`, `artifacts_uri`: as the flow was given them (None: each worker's)."""
    params, logger = job.params, get_run_logger()
    in_flight: dict[str, _Submitted] = {}  # flow run id -> shard
    submitted: dict[str, _Submitted] = {}  # every shard run, for the artifact that links them
    listed = done = 0
    progress_id = create_progress_artifact(0.0, key="extract-progress", description="listing the source")

    def submit(shard: Shard) -> None:
        name = batch_name(shard.number, shard.keys, "shard") + (f" (attempt {shard.attempt})" if shard.attempt > 1
                                                                 else "")
        run = run_deployment(
            params.shard_deployment, timeout=0, flow_run_name=name,
            parameters=fanout.shard_parameters(job, shard, database_url=database_url, artifacts_uri=artifacts_uri),
            idempotency_key=f"{flow_run.id}:run-{job.run_id}:shard-{shard.number}:{shard.attempt}",
        )
        in_flight[str(run.id)] = submitted[str(run.id)] = _Submitted(shard, name)

    def settle() -> None:
        nonlocal done
        time.sleep(POLL_S)
        states = _read_states(list(in_flight))
        lost = fanout.lost_shards(params, job.run_id)
        for flow_run_id, state in states.items():
            entry = in_flight[flow_run_id]
            entry.state = state.name
            if state.is_completed():
                del in_flight[flow_run_id]
                done += len(entry.shard.keys)
            elif state.is_final() or flow_run_id in lost:
                del in_flight[flow_run_id]
                reason = (f"flow run {flow_run_id} ended {state.name}: {state.message}" if state.is_final()
                          else f"flow run {flow_run_id}: its run's lease expired (worker lost)")
                if not state.is_final():
                    _mark_crashed(flow_run_id, reason)
                    entry.state = "Crashed"
                keys = fanout.remaining_keys(params, job.run_id, flow_run_id, entry.shard.keys, reason)
                done += len(entry.shard.keys) - len(keys)
                logger.warning("shard %s lost (%s); %s documents go to a new shard", entry.shard.number, reason,
                               len(keys))
                if keys and entry.shard.attempt >= MAX_ATTEMPTS:
                    raise ShardLostError(f"shard {entry.shard.number} lost {MAX_ATTEMPTS} times; last: {reason}")
                if keys:
                    submit(Shard(entry.shard.number, keys, entry.shard.attempt + 1))
        update_progress_artifact(progress_id, 100.0 * done / max(listed, 1),
                                 description=f"{done} of {listed} documents listed so far")
        for listener in listeners:
            listener(done, listed)

    try:
        for shard in fanout.cut_shards(fanout.list_keys(params.source), params.shard_documents):
            listed += len(shard.keys)
            while len(in_flight) >= params.shards_in_flight:
                settle()
            submit(shard)
        while in_flight:
            settle()
    finally:
        _publish_shards(job.run_id, submitted)
    logger.info("%s documents in %s shard runs", listed, len(submitted))
    return {"documents_total": listed, **fanout.totals(params, job.run_id), "model_intervals": []}


def _read_states(flow_run_ids: list[str]) -> dict:
    states = {}
    with get_client(sync_client=True) as client:
        for start in range(0, len(flow_run_ids), READ_LIMIT):
            ids = [UUID(i) for i in flow_run_ids[start : start + READ_LIMIT]]
            for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)),
                                             limit=READ_LIMIT):
                states[str(run.id)] = run.state
    return states


def _mark_crashed(flow_run_id: str, reason: str) -> None:
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(flow_run_id), Crashed(message=reason), force=True)


def _publish_shards(run_id: int, submitted: dict[str, _Submitted]) -> None:
    ui = PREFECT_UI_URL.value()
    rows = ["| shard | documents | attempt | flow run | state |", "|---:|---:|---:|---|---|"]
    for flow_run_id, entry in submitted.items():
        link = f"[{entry.name}]({ui}/runs/flow-run/{flow_run_id})" if ui else f"{entry.name} (`{flow_run_id}`)"
        rows.append(f"| {entry.shard.number} | {len(entry.shard.keys)} | {entry.shard.attempt} | {link} | "
                    f"{entry.state} |")
    create_markdown_artifact("\n".join(rows), key="extract-shards",
                             description=f"Run {run_id}: its shards' flow runs")
