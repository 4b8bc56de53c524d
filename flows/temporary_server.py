"""A temporary Prefect API server for flow runs in this process, which stops when its parent dies.

    with temporary_api_server():       # PREFECT_API_URL set: nothing started
        extract(...)
    python -P flows/temporary_server.py --parent PID --fd FD   # the server (started above)

Prefect's own ephemeral server (SubprocessASGIServer) is stopped only by `atexit`, so a
SIGKILLed or OOM-killed CLI leaves it running for good. prctl(PR_SET_PDEATHSIG) is no cure:
it fires when the thread that forked exits, and Prefect starts its server from whichever
thread first needs a client. This server polls its parent instead and stops once it is gone.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

PARENT_POLL_S = 1.0
STOP_S = 5  # for a graceful stop, then it is killed
# A first start creates Prefect's database, slow on a busy machine; Prefect's own 20 s (its
# setting, which can only lengthen this) counts sleeps only, so its real wait is longer.
STARTUP_S = 90


@contextmanager
def temporary_api_server() -> Iterator[str]:
    """The Prefect API URL for the block: the configured one, else a temporary server's, stopped at the end."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    server, api_url = _start_server()
    try:
        _wait_until_healthy(server, api_url)
        with _global_api_url(api_url):
            try:
                yield api_url
            finally:
                _drain_workers()  # logs and events still queued, before the server goes
    finally:
        _stop_server(server)


def _start_server() -> tuple[subprocess.Popen, str]:
    from prefect.settings import get_current_settings

    # The port is bound here and the socket handed over, so no other process can take it
    # between choosing and serving.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        environment = {**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True),
                       "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        # This very file, with -P: neither its folder nor the working directory (which may hold
        # another `flows` package) joins sys.path. Its own process group: Ctrl-C reaches the CLI
        # alone, which ends its flow run before it stops the server.
        server = subprocess.Popen(
            [sys.executable, "-P", __file__, "--parent", str(os.getpid()), "--fd", str(listener.fileno())],
            env=environment, pass_fds=[listener.fileno()], process_group=0)
    return server, f"http://127.0.0.1:{port}/api"


def _wait_until_healthy(server: subprocess.Popen, api_url: str) -> None:
    """Raises OSError subclasses, which the CLI reports in one line."""
    import httpx
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    timeout = max(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value(), STARTUP_S)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ChildProcessError(f"the temporary Prefect server exited with {server.returncode}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the temporary Prefect server did not answer within {timeout} s "
                       "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS; or give a server's PREFECT_API_URL)")


@contextmanager
def _global_api_url(api_url: str) -> Iterator[None]:
    """PREFECT_API_URL for every thread of the process: Prefect's log and event workers do not
    see a `temporary_settings` context, and without a URL they would start Prefect's own server."""
    from prefect.context import refresh_global_settings_context

    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = api_url
    refresh_global_settings_context()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PREFECT_API_URL"]
        else:
            os.environ["PREFECT_API_URL"] = previous
        refresh_global_settings_context()


def _drain_workers() -> None:
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=STOP_S)
    EventsWorker.drain_all(timeout=STOP_S)


def _stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(STOP_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# --- the server process ------------------------------------------------------------------


def serve(parent: int, fd: int) -> None:
    """Prefect's API app under uvicorn on the socket `fd`, until SIGTERM or until `parent` dies."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config("prefect.server.api.server:create_app", factory=True,
                                           log_level="error", lifespan="on"))
    threading.Thread(target=_stop_when_orphaned, args=(server, parent), daemon=True).start()
    server.run(sockets=[socket.socket(fileno=fd)])


def _stop_when_orphaned(server, parent: int) -> None:
    # A dead parent's children are adopted by init or a subreaper: getppid() changes.
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    server.should_exit = True
    time.sleep(STOP_S)
    os._exit(1)  # the graceful stop hung


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--parent", type=int, required=True, help="stop when this process is gone")
    arguments.add_argument("--fd", type=int, required=True, help="a bound TCP socket to serve on")
    options = arguments.parse_args()
    serve(options.parent, options.fd)
