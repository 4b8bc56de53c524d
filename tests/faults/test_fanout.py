"""One extract run fanned out over a real Prefect work pool: a Prefect server on loopback, a
process work pool, the shard deployment registered from code, two `prefect worker start`
processes, PostgreSQL and the S3 server; 40 documents in shards of 5, the counting reader.

    pytest -q tests/faults/test_fanout.py        # ~2 min on 2 cores; marked slow
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.faults.runs import (
    FIELDS,
    REPO,
    Extraction,
    assert_each_document_extracted_once,
    query,
    reader_log,
    wait_until,
)

pytestmark = pytest.mark.slow

DOCUMENTS, SHARD = 40, 5
LEASE_S = 5  # a killed shard is found within this; long enough for a busy 2-core machine's heartbeats
POOL, DEPLOYMENT = "faults-pool", "extract-shard/faults"


@pytest.fixture(scope="module")
def shard_deployment(prefect_api_url) -> str:
    """A process work pool and the shard deployment on it, loaded from this checkout."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=POOL, type="process"), overwrite=True)
    flow.from_source(source=str(REPO), entrypoint="tests/faults/fanout_shard.py:extract_shard").deploy(
        name=DEPLOYMENT.split("/")[1], work_pool_name=POOL, print_next_steps=False)
    return DEPLOYMENT


@pytest.fixture
def bucket_source(s3_client, s3_bucket) -> str:
    for i in range(DOCUMENTS):
        image = Image.new("RGB", (320, 240), "white")
        ImageDraw.Draw(image).text((20, 20 + 4 * i), f"RECEIPT {i}  TOTAL 12.50", fill="black")
        data = io.BytesIO()
        image.save(data, format="PNG")
        s3_client.put_object(Bucket=s3_bucket, Key=f"docs/receipt-{i:02}.png", Body=data.getvalue())
    return f"s3://{s3_bucket}/docs/"


class Worker:
    """`prefect worker start --pool POOL --limit 1`: one shard at a time, in a flow run process."""

    def __init__(self, tmp_path: Path, name: str, api_url: str, database_url: str, gate: Path) -> None:
        env = {**os.environ, "PREFECT_API_URL": api_url, "DATABASE_URL": database_url,
               "CROPVLM_ARTIFACTS_URI": str(tmp_path / "artifacts"), "FAULTS_READER_LOG": str(reader_log(tmp_path)),
               "FAULTS_GATE": str(gate), "FAULTS_WORKER": name, "FAULTS_WORKERS_LOG": str(tmp_path / "workers.log"),
               "PYTHONPATH": str(REPO), "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
        self.name, self.log = name, tmp_path / f"worker-{name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--limit", "1", "--name", name],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, flow_run_pids: set[int]) -> None:
        """SIGKILL the worker and its flow run processes: a lost machine."""
        for pid in flow_run_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)


@pytest.fixture
def workers(tmp_path, prefect_api_url, pg_url, shard_deployment):
    gate = tmp_path / "hold"
    gate.touch()  # model calls wait until the test lets them go
    started = [Worker(tmp_path, name, prefect_api_url, pg_url, gate) for name in ("a", "b")]
    yield started, gate
    for worker in started:
        worker.kill(set())


def pids_by_worker(tmp_path: Path) -> dict[int, str]:
    log = tmp_path / "workers.log"
    lines = log.read_text().split("\n") if log.exists() else []
    return {int(pid): name for name, pid in (line.split() for line in lines if line)}


def answered_by(tmp_path: Path) -> Counter:
    """Model calls begun, by the worker whose flow run made them."""
    by_pid = pids_by_worker(tmp_path)
    lines = reader_log(tmp_path).read_text().splitlines() if reader_log(tmp_path).exists() else []
    return Counter(by_pid.get(int(line.split()[1]), "?") for line in lines if line.startswith("begin "))


def fan_out(tmp_path, pg_url, source, api_url, deployment) -> Extraction:
    return Extraction(tmp_path, "parent", pg_url, source, api_url=api_url, lease_seconds=LEASE_S,
                      options=("--shard-documents", str(SHARD), "--shard-deployment", deployment))


def assert_parent_summary(pg_url: str) -> int:
    [(parent, status, total, extracted, skipped, failed, answers)] = query(
        pg_url, "SELECT id, status, documents_total, documents_extracted, documents_skipped, documents_failed, "
                "answers_written FROM extraction_runs WHERE parent_run_id IS NULL")
    assert (status, total, extracted, skipped, failed, answers) == (
        "completed", DOCUMENTS, DOCUMENTS, 0, 0, DOCUMENTS * FIELDS)
    assert query(pg_url, f"SELECT count(*), count(DISTINCT uri) FROM run_documents r JOIN extraction_runs e "
                         f"ON e.id = r.run_id WHERE e.parent_run_id = {parent} AND r.status = 'extracted'") == [
        (DOCUMENTS, DOCUMENTS)]
    return parent


def shard_links(parent: int) -> str:
    from prefect.artifacts import Artifact

    artifact = Artifact.get("extract-shards")
    assert artifact is not None and f"Run {parent}:" in artifact.description
    return artifact.data


def test_one_run_in_shards_over_two_workers_extracts_each_document_once(
        tmp_path, pg_url, bucket_source, prefect_api_url, shard_deployment, workers):
    started, gate = workers
    parent = fan_out(tmp_path, pg_url, bucket_source, prefect_api_url, shard_deployment)
    wait_until(lambda: set(answered_by(tmp_path)) >= {"a", "b"}, parent, timeout=90,
               what="both workers running a shard's model calls")
    gate.unlink()
    assert parent.wait(150) == 0, parent.stderr()
    assert_each_document_extracted_once(pg_url, tmp_path, DOCUMENTS)
    parent_id = assert_parent_summary(pg_url)
    assert query(pg_url, f"SELECT count(*), min(status), max(status) FROM extraction_runs "
                         f"WHERE parent_run_id = {parent_id}") == [(DOCUMENTS // SHARD, "completed", "completed")]
    assert shard_links(parent_id).count("/runs/flow-run/") == DOCUMENTS // SHARD
    assert f"{DOCUMENTS} extracted" in parent.out.read_text()


def test_a_worker_killed_mid_shard_loses_and_repeats_nothing(
        tmp_path, pg_url, bucket_source, prefect_api_url, shard_deployment, workers):
    (doomed, survivor), gate = workers
    parent = fan_out(tmp_path, pg_url, bucket_source, prefect_api_url, shard_deployment)
    wait_until(lambda: answered_by(tmp_path)["a"] >= 1, parent, timeout=90, what="worker a's shard under way")
    doomed.kill({pid for pid, name in pids_by_worker(tmp_path).items() if name == "a"})
    gate.unlink()
    assert parent.wait(150) == 0, parent.stderr()
    assert_each_document_extracted_once(pg_url, tmp_path, DOCUMENTS)
    parent_id = assert_parent_summary(pg_url)
    statuses = Counter(status for (status,) in query(
        pg_url, f"SELECT status FROM extraction_runs WHERE parent_run_id = {parent_id}"))
    assert statuses == {"completed": DOCUMENTS // SHARD, "crashed": 1}, statuses
    assert shard_links(parent_id).count("| Crashed |") == 1
