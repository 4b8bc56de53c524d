"""One extract run spread over a work pool: the listing, streamed, cut into shards, each
extracted by a shard run of its own (`extraction_runs.parent_run_id` names the parent), and
what becomes of a shard whose worker died. Plain Python: flows/extract.py submits and
watches the shards' flow runs, flows/extract_shard.py runs one.

A shard holds its own lease and claims (storage/claims.py), so a worker that dies mid-shard
leaves a shard run that the parent's sweep marks `crashed` one lease after its last
heartbeat, its claims freed; the keys it had not recorded go to a new shard
(`remaining_keys`). So each listed document is recorded by exactly one shard of the run, and
its model work done once unless a worker died in the middle of it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from app.extract import ExtractJob, Models
from app.params import ExtractParams
from app.resources import get_session_factory, get_store
from cropvlm.templates import TemplateSet
from storage import claims, queries, shards
from storage.errors import StorageError
from storage.retry import retry_database


class ShardLostError(RuntimeError):
    """A shard was lost (its worker died or its flow run failed) more times than allowed."""


class SetupMismatchError(RuntimeError):
    """A shard's worker resolved other templates or models than the parent run."""


@dataclass(frozen=True)
class Shard:
    number: int  # 1-based, in listing order
    keys: list[str]
    attempt: int = 1


def list_keys(source: str) -> Iterator[str]:
    """Keys under the source as the store lists them: page by page on S3, folder by folder on disk."""
    return (info.key for info in get_store(source).list())


def cut_shards(keys: Iterable[str], size: int) -> Iterator[Shard]:
    """Consecutive shards of `size` keys (the last may be shorter), never more than one in memory."""
    keys = iter(keys)
    for number in itertools.count(1):
        batch = list(itertools.islice(keys, size))
        if not batch:
            return
        yield Shard(number, batch)


def shard_parameters(job: ExtractJob, shard: Shard, *, database_url: str | None, artifacts_uri: str | None) -> dict:
    """The shard flow's parameters. `database_url` and `artifacts_uri` as the parent was given
    them (None: the worker's environment), never as resolved here: a password stays out of
    Prefect, and a local folder of this machine means nothing to another."""
    params = job.params.model_dump(exclude={"database_url", "artifacts_uri", "shard_documents"})
    return {"keys": shard.keys, "parent_run_id": job.run_id,
            "params": {**params, "database_url": database_url, "artifacts_uri": artifacts_uri},
            "template_set_hash": job.templates.content_hash,
            "policy_version": job.models.policy_version, "reader_version": job.models.reader_version}


def check_setup(templates: TemplateSet, models: Models, *, template_set_hash: str, policy_version: str,
                reader_version: str) -> None:
    """A shard must extract with what its parent resolved, or its answers (and claims) would
    belong to another setup: other template files on the worker, a promotion mid-run."""
    mismatches = [f"{what} {ours} here, {theirs} in the parent run" for what, ours, theirs in (
        ("templates", templates.content_hash[:12], template_set_hash[:12]),
        ("policy", models.policy_version, policy_version), ("reader", models.reader_version, reader_version))
        if ours != theirs]
    if mismatches:
        raise SetupMismatchError("shard setup differs from its parent: " + "; ".join(mismatches))


def lost_shards(params: ExtractParams, parent_run_id: int) -> set[str]:
    """Sweep runs whose lease expired; the flow run ids of the parent's shards now `crashed`."""
    def sweep() -> set[str]:
        with get_session_factory(params.database_url).begin() as session:
            claims.sweep_stale_runs(session, by_run=parent_run_id, lease_seconds=params.lease_seconds)
            return {flow_run for flow_run, (_, status) in shards.shard_runs(session, parent_run_id).items()
                    if status == "crashed"}

    return retry_database(sweep, what="sweep the shards")


def remaining_keys(params: ExtractParams, parent_run_id: int, flow_run_id: str, keys: list[str],
                   reason: str) -> list[str]:
    """The shard's keys it did not record. Its run, if Prefect saw it die before its lease ran
    out, is marked `crashed` first, freeing its claims for the next shard at once."""
    store = get_store(params.source)

    def close() -> set[str]:
        with get_session_factory(params.database_url).begin() as session:
            run_id, status = shards.shard_runs(session, parent_run_id).get(flow_run_id, (None, None))
            if run_id is None:  # died before its run started
                return set()
            if status == "running":
                queries.finish_run(session, run_id, status="crashed", error=f"crashed: {reason}")
            return shards.recorded_uris(session, run_id)

    recorded = retry_database(close, what="close a lost shard")
    return [key for key in keys if _uri(store, key) not in recorded]


def totals(params: ExtractParams, parent_run_id: int) -> dict:
    def read() -> dict:
        with get_session_factory(params.database_url).begin() as session:
            return shards.shard_totals(session, parent_run_id)

    return retry_database(read, what="total the shards")


def _uri(store, key: str) -> str:
    try:
        return store.uri(key)
    except StorageError:  # an unusable key is recorded under the key itself (app/extract.py)
        return key
