"""The device guard every model task takes: one slot of a global concurrency limit.

    prefect gcl create gpu --limit 1      # model calls take turns on the device

A flow names the limit in its `gpu_limit` parameter, checks it once (`existing_limit`) and
passes it to its tasks, which enter `model_slot(gpu_limit)()` around their model work only.
(A tag limit on the tasks' `gpu` tag would hold the device for whole tasks: don't create one.)
"""

from __future__ import annotations

import contextlib
from functools import partial

from prefect import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound

from app.extract import ModelSlot

GPU_TAG = "gpu"  # for filtering in the UI; the device is guarded by the global limit, see model_slot


def existing_limit(name: str | None, logger) -> str | None:
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
            logger.info("no global concurrency limit %r: model calls may overlap "
                        "(serialise them with `prefect gcl create %s --limit 1`)", name, name)
            return None
    return name


def model_slot(limit: str | None) -> ModelSlot:
    """The guard entered around each model call: one slot of the global concurrency limit
    `limit`, or nothing when None.

    strict=False: a limit that does not exist (never created, or deleted mid-run) lets the
    call through with a warning instead of failing the task (Prefect 3 creates none on the
    fly: create_if_missing is deprecated and ignored). The slot's lease is renewed while a
    long call runs.
    """
    if limit is None:
        return contextlib.nullcontext
    return partial(concurrency, limit, occupy=1, strict=False)
