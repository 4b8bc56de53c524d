"""Helpers of the fault suite: `cropvlm extract` processes with the counting reader
(fake_reader_cli.py), bounded waits, and the check that every document was extracted once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]
RECEIPT = str(REPO / "templates/receipt.yaml")
FIELDS = 4  # in templates/receipt.yaml
DOCUMENTS = 6
LEASE_S = 2  # short, so a killed run's documents are free again within the test


def make_source(folder: Path, count: int = DOCUMENTS) -> Path:
    """`count` one-page PNGs with different pixels (so different sha256 and page hashes)."""
    folder.mkdir(parents=True)
    for i in range(count):
        image = Image.new("RGB", (320, 240), "white")
        ImageDraw.Draw(image).text((20, 20 + 20 * i), f"RECEIPT {i}  TOTAL 12.50", fill="black")
        image.save(folder / f"receipt-{i}.png")
    return folder


class Extraction:
    """One `cropvlm extract` process over `source`, with the fake reader logging to `log`.

    Its own session (process group), so a kill reaches the children it started, and output
    in files, which a full pipe cannot block."""

    def __init__(self, tmp_path: Path, name: str, database_url: str, source: Path | str, *, api_url: str | None,
                 gate: Path | None = None, env_extra: dict[str, str] | None = None, options: tuple[str, ...] = (),
                 lease_seconds: int = LEASE_S) -> None:
        self.out, self.err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        env = {**os.environ, "DATABASE_URL": database_url, "CROPVLM_ARTIFACTS_URI": str(tmp_path / "artifacts"),
               "FAULTS_READER_LOG": str(reader_log(tmp_path)), "PYTHONPATH": str(REPO)}
        env.pop("PREFECT_API_URL", None)
        env.pop("FAULTS_GATE", None)
        if api_url:  # else the CLI starts its own temporary Prefect server
            env["PREFECT_API_URL"] = api_url
        if gate:
            env["FAULTS_GATE"] = str(gate)
        env.update(env_extra or {})
        command = [sys.executable, "-m", "tests.faults.fake_reader_cli", "extract", str(source),
                   "--templates", RECEIPT, "--reader", "fake", "--policy", "full", "--batch-documents", "1",
                   "--lease-seconds", str(lease_seconds), "--no-progress", *options]
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=err,
                                            start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float = 90) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"cropvlm extract still running after {timeout} s:\n{self.stderr()}") from None

    def kill(self) -> None:
        """SIGKILL the process and everything it started (a lost machine, the OOM killer)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


def reader_log(tmp_path: Path) -> Path:
    return tmp_path / "reader.log"


def model_calls_begun(tmp_path: Path) -> int:
    log = reader_log(tmp_path)
    return sum(line.startswith("begin ") for line in log.read_text().splitlines()) if log.exists() else 0


def wait_until(condition: Callable[[], object], *processes: Extraction, timeout: float = 60, what: str = "") -> None:
    """Poll `condition` until it holds; fail early, with its output, if a process exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        for extraction in processes:
            if extraction.process.poll() is not None:
                raise AssertionError(f"exited with {extraction.process.returncode} while waiting for {what}:\n"
                                     f"{extraction.stderr()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def query(database_url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql))]
    finally:
        engine.dispose()


def runs(database_url: str) -> dict[int, tuple[str, str | None, bool]]:
    """run id -> (status, error, finished)"""
    rows = query(database_url, "SELECT id, status, error, finished_at IS NOT NULL FROM extraction_runs")
    return {run_id: (status, error, finished) for run_id, status, error, finished in rows}


def assert_each_document_extracted_once(database_url: str, tmp_path: Path, documents: int = DOCUMENTS) -> None:
    """One extraction and FIELDS answers per document, each (page, field) answered by the
    model once across all processes, no claim left, no run left running."""
    assert query(database_url, "SELECT count(*), count(DISTINCT document_id) FROM extractions") == [
        (documents, documents)]
    assert query(database_url, "SELECT count(*) FROM answers") == [(documents * FIELDS,)]
    assert query(database_url, "SELECT count(*) FROM document_claims") == [(0,)]
    assert not [run for run, (status, _, _) in runs(database_url).items() if status == "running"]
    answered = Counter(tuple(line.split()[2:]) for line in reader_log(tmp_path).read_text().splitlines()
                       if line.startswith("answer "))
    assert len(answered) == documents * FIELDS
    assert set(answered.values()) == {1}, f"model work repeated: {answered}"
