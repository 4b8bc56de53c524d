"""The steps of docs/deploying.md ("Prefect deployment"), followed on loopback: `prefect server
start`, PREFECT_API_URL, the work pool and the `gpu` limit, `prefect deploy` of prefect.yaml's
`extract` from this checkout with CROPVLM_HOME set, a process worker with DATABASE_URL and
CROPVLM_ARTIFACTS_URI in its environment (started elsewhere: the pull step must find the
checkout), and a run of the deployment on a folder of two receipts with tesseract.

    pytest -q tests/deploy/test_deploying.py     # ~30 s on 2 cores; marked slow
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cropvlm.synthetic import generate_document
from tests.faults.runs import FIELDS, RECEIPT, REPO, query

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tesseract") is None, reason="no tesseract binary")]

DOCUMENTS = 2
PREFECT = [sys.executable, "-m", "prefect"]


def receipts(folder: Path) -> Path:
    folder.mkdir()
    for seed in range(DOCUMENTS):
        document = generate_document("receipt", seed, "png")
        (folder / f"{document.name}{document.suffix}").write_bytes(document.data)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def post(url: str, body: dict) -> object:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


class Operator:
    """A shell with PREFECT_API_URL exported (step 2) and a private Prefect home."""

    def __init__(self, tmp_path: Path, api_url: str) -> None:
        self.api_url, self.tmp_path = api_url, tmp_path
        self.env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api_url,
                    # the venv's editable install may point at another checkout: import this one
                    "PYTHONPATH": str(REPO)}
        for name in ("DATABASE_URL", "CROPVLM_DATABASE_URL", "CROPVLM_ARTIFACTS_URI", "CROPVLM_HOME"):
            self.env.pop(name, None)
        self.processes: list[subprocess.Popen] = []

    def run(self, *args: str, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float = 60) -> str:
        done = subprocess.run([*PREFECT, *args], cwd=cwd, env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=timeout)
        assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, name: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Path:
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as out:
            self.processes.append(subprocess.Popen(
                [*PREFECT, *args], cwd=cwd, env={**self.env, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True))
        return log

    def stop(self) -> None:
        for process in reversed(self.processes):
            try:
                os.killpg(process.pid, 15)
                process.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, 9)


@pytest.fixture
def operator(tmp_path) -> Iterator[Operator]:
    port = free_port()
    operator = Operator(tmp_path, f"http://127.0.0.1:{port}/api")
    # 1. the server
    log = operator.start("server", "server", "start", "--host", "127.0.0.1", "--port", str(port), cwd=tmp_path,
                         env={"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{operator.api_url}/health")
                break
            except OSError:
                assert time.monotonic() < deadline, f"no Prefect server within 60 s:\n{log.read_text()}"
                time.sleep(0.5)
        yield operator
    finally:
        operator.stop()


def test_the_documented_deployment_steps_run_the_extract_deployment(tmp_path, operator):
    source = receipts(tmp_path / "incoming")
    database = tmp_path / "cropvlm.db"
    # 3. the work pool and the concurrency limit
    operator.run("work-pool", "create", "cropvlm-process", "--type", "process")
    operator.run("gcl", "create", "gpu", "--limit", "1")
    # 4. deploy from the checkout with CROPVLM_HOME set
    operator.run("--no-prompt", "deploy", "--name", "extract", env={"CROPVLM_HOME": str(REPO)}, timeout=90)
    deployment = get(f"{operator.api_url}/deployments/name/extract/extract")
    assert deployment["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
    assert [s["active"] for s in deployment["schedules"]] == [False]  # the placeholder source never runs
    # 5. a worker, started outside the checkout, its environment set
    worker = operator.start("worker", "worker", "start", "--pool", "cropvlm-process", cwd=tmp_path, env={
        "DATABASE_URL": f"sqlite:///{database}", "CROPVLM_ARTIFACTS_URI": str(tmp_path / "artifacts"),
        "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "1"})
    # 6. a run by hand on a source of its own
    parameters = {"source": str(source), "templates": [RECEIPT], "policy": "full", "reader": "ocr:tesseract@384"}
    try:
        out = operator.run("deployment", "run", "extract/extract", "--params", json.dumps(parameters),
                           "--watch", "--watch-interval", "1", "--watch-timeout", "75", timeout=90)
    except AssertionError as error:
        raise AssertionError(f"{error}\nworker:\n{worker.read_text()[-4000:]}") from None
    [run] = post(f"{operator.api_url}/flow_runs/filter", {"deployments": {"id": {"any_": [deployment["id"]]}}})
    assert run["state_type"] == "COMPLETED", (out, worker.read_text()[-4000:])
    url = f"sqlite:///{database}"
    assert query(url, "SELECT status, documents_extracted, documents_failed FROM extraction_runs") == [
        ("completed", DOCUMENTS, 0)]
    [(answers, answered)] = query(url, "SELECT count(*), sum(CASE WHEN answer != '' THEN 1 ELSE 0 END) FROM answers")
    assert answers == DOCUMENTS * FIELDS and answered >= DOCUMENTS  # tesseract reads the totals at least
