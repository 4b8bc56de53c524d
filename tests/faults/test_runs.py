"""Runs that overlap, are killed or are stopped: `cropvlm extract` processes on one PostgreSQL
database, with a reader that counts its work and can be held mid-call (fake_reader_cli.py).
Each case ends with every document extracted once and its model work done once; the CLI's
temporary Prefect server is stopped however its run ends, SIGKILL included.

    pytest -q tests/faults
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.faults.runs import (
    LEASE_S,
    Extraction,
    assert_each_document_extracted_once,
    model_calls_begun,
    query,
    runs,
    wait_until,
)

BATCHES_AT_ONCE = 2  # flows/extract.py runs two batches (of one document here) at a time


def test_two_runs_at_once_do_each_documents_model_work_once(tmp_path, pg_url, source, prefect_api_url):
    gate = tmp_path / "hold"
    gate.touch()
    first = Extraction(tmp_path, "first", pg_url, source, api_url=prefect_api_url, gate=gate)
    wait_until(lambda: model_calls_begun(tmp_path) >= BATCHES_AT_ONCE, first, what="the first run's model calls")
    second = Extraction(tmp_path, "second", pg_url, source, api_url=prefect_api_url, gate=gate)
    held = "SELECT count(*) FROM run_documents WHERE error LIKE 'being extracted by run %'"
    wait_until(lambda: query(pg_url, held)[0][0] >= BATCHES_AT_ONCE, first, second,
               what="the second run skipping the documents the first holds")
    gate.unlink()
    assert first.wait() == 0, first.stderr()
    assert second.wait() == 0, second.stderr()
    assert {status for status, _, _ in runs(pg_url).values()} == {"completed"}
    assert_each_document_extracted_once(pg_url, tmp_path)


def test_a_killed_run_is_marked_crashed_and_the_next_run_extracts_its_documents(
        tmp_path, pg_url, source, prefect_api_url):
    gate = tmp_path / "hold"
    gate.touch()
    killed = Extraction(tmp_path, "killed", pg_url, source, api_url=prefect_api_url, gate=gate)
    wait_until(lambda: model_calls_begun(tmp_path) >= BATCHES_AT_ONCE, killed, what="model calls under way")
    killed.kill()
    (killed_id,) = runs(pg_url)
    assert runs(pg_url)[killed_id][0] == "running"  # nothing could record the death
    time.sleep(LEASE_S)  # its last heartbeat renewed the leases for at most this long
    gate.unlink()
    rerun = Extraction(tmp_path, "rerun", pg_url, source, api_url=prefect_api_url)
    assert rerun.wait() == 0, rerun.stderr()
    (rerun_id,) = set(runs(pg_url)) - {killed_id}
    status, error, finished = runs(pg_url)[killed_id]
    assert (status, finished) == ("crashed", True)
    assert "stopped renewing its lease" in error and f"found by run {rerun_id}" in error
    assert runs(pg_url)[rerun_id][0] == "completed"
    assert_each_document_extracted_once(pg_url, tmp_path)


def test_sigterm_marks_the_run_interrupted_releases_its_documents_and_stops_the_prefect_server(
        tmp_path, pg_url, source, prefect_api_url):
    gate = tmp_path / "hold"
    gate.touch()
    stopped = Extraction(tmp_path, "stopped", pg_url, source, api_url=None, gate=gate)  # its own Prefect server
    wait_until(lambda: model_calls_begun(tmp_path) >= BATCHES_AT_ONCE, stopped, timeout=90,
               what="model calls under way")
    servers = temporary_servers(stopped.pid)
    assert servers, "no temporary Prefect server process"
    os.kill(stopped.pid, signal.SIGTERM)
    (run_id,) = runs(pg_url)
    wait_until(lambda: runs(pg_url)[run_id][0] == "interrupted", stopped, what="the run marked interrupted")
    gate.unlink()  # the calls under way finish, and their answers are kept
    assert stopped.wait(30) == 128 + signal.SIGTERM
    err = stopped.stderr()
    assert "cropvlm: stopped by SIGTERM" in err and "Traceback" not in err, err
    assert not alive(servers), "temporary Prefect server left running"
    status, error, finished = runs(pg_url)[run_id]
    assert finished and "interrupted (SIGTERM)" in error
    assert query(pg_url, "SELECT count(*) FROM document_claims") == [(0,)]
    extracted = query(pg_url, "SELECT count(*) FROM extractions")[0][0]
    assert extracted < len(list(source.iterdir()))  # it stopped before the end

    rerun = Extraction(tmp_path, "rerun", pg_url, source, api_url=prefect_api_url)
    assert rerun.wait() == 0, rerun.stderr()
    assert_each_document_extracted_once(pg_url, tmp_path)


@pytest.mark.slow
def test_a_killed_run_leaves_no_temporary_prefect_server(tmp_path, pg_url, source):
    gate = tmp_path / "hold"
    gate.touch()
    killed = Extraction(tmp_path, "killed", pg_url, source, api_url=None, gate=gate)  # its own Prefect server
    wait_until(lambda: model_calls_begun(tmp_path) >= 1, killed, timeout=90, what="model calls under way")
    servers = temporary_servers(killed.pid)
    assert servers, "no temporary Prefect server process"
    os.kill(killed.pid, signal.SIGKILL)  # the CLI alone, as the OOM killer does
    killed.process.wait(10)
    wait_until(lambda: not alive(servers), timeout=10, what="the orphaned Prefect server to stop")
    killed.kill()  # what else it started


@pytest.mark.slow
def test_a_completed_run_leaves_no_temporary_prefect_server(tmp_path, pg_url, source):
    done = Extraction(tmp_path, "done", pg_url, source, api_url=None)
    wait_until(lambda: temporary_servers(done.pid), done, timeout=90, what="the temporary Prefect server")
    servers = temporary_servers(done.pid)
    assert done.wait() == 0, done.stderr()
    assert not alive(servers), "temporary Prefect server left running"


def temporary_servers(parent: int) -> list[int]:
    """The temporary Prefect servers started for `parent` (flows/temporary_server.py), found by
    their command line, which still names the parent once they are orphaned (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            arguments = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        # python -P .../flows/temporary_server.py --parent PID --fd FD
        if arguments[2:3] and arguments[2].endswith("flows/temporary_server.py") and \
                arguments[3:5] == ["--parent", str(parent)]:
            found.append(int(cmdline.parent.name))
    return found


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running: an exited process no one has reaped yet (a zombie) is not."""
    running = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            running.append(pid)
    return running
