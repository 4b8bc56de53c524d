"""The `extract-shard` flow: one shard of a sharded extract run, on whichever worker of the
pool takes it. Not started by hand: the `extract` flow with `shard_documents` submits it.

    prefect deploy --name extract-shard        # prefect.yaml; workers: prefect worker start --pool ...

The shard is a run of its own (its lease, its claims, its documents), linked to the parent
run (`parent_run_id`); the parent's summary, table and `cropvlm export --run` include it.
It resolves templates, policy and reader itself and refuses to run if they differ from what
the parent resolved.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from app.extract import ExtractJob, resolve_models
from app.fanout import check_setup
from app.params import ExtractParams
from cropvlm.templates import load_template_set
from flows.extract import run_batches, run_job, run_parameters
from storage.db import prepare_database
from tasks.device import existing_limit
from tasks.extract import open_run


@flow(name="extract-shard", task_runner=ThreadPoolTaskRunner(max_workers=2))
def extract_shard(keys: list[str], parent_run_id: int, params: dict, template_set_hash: str, policy_version: str,
                  reader_version: str) -> dict:
    """Extract `keys` under the parent run's setup; returns the shard run's summary."""
    started, logger = time.perf_counter(), get_run_logger()
    settings = ExtractParams(**params)
    template_set = load_template_set(settings.templates)
    prepare_database(settings.database_url)
    models = resolve_models(settings)
    check_setup(template_set, models, template_set_hash=template_set_hash, policy_version=policy_version,
                reader_version=reader_version)
    gpu_limit = existing_limit(settings.gpu_limit, logger)
    run_id = open_run(settings, template_set, models, flow_run_id=str(flow_run.id) if flow_run.id else None,
                      parameters=run_parameters(settings, models, gpu_limit), parent_run_id=parent_run_id)
    job = ExtractJob(run_id, settings, template_set, models)
    return run_job(job, started, logger, lambda: run_batches(job, keys, gpu_limit, logger))
