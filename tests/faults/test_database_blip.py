"""PostgreSQL unreachable for a while in the middle of a run: the run retries and completes.

The run reaches the shared server through a TCP proxy on loopback; cutting the proxy drops
every open connection and refuses new ones, as a server restart or failover does.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from sqlalchemy.engine import make_url

from tests.faults.runs import Extraction, assert_each_document_extracted_once, model_calls_begun, runs, wait_until


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target`; `cut(seconds)` takes it down for a while."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self._sockets, self._lock = target, [], threading.Lock()
        self._up = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._listener.settimeout(0.1)  # the accept loop looks at _up ten times a second
        self._up.set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, seconds: float) -> None:
        """Drop every connection and refuse new ones for `seconds`."""
        self._up.clear()
        with self._lock:
            self._listener.close()  # nothing listens: connecting is refused at once
            for sock in self._sockets:
                _close(sock)
            self._sockets.clear()
        threading.Timer(seconds, self._reopen).start()

    def close(self) -> None:
        self._closed = True
        self.cut(0)

    def _reopen(self) -> None:
        if self._closed:
            return
        with self._lock:
            self._listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
            self._listener.settimeout(0.1)
        self._up.set()

    def _accept(self) -> None:
        while not self._closed:
            if not self._up.wait(0.1):
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:  # timeout, or closed by cut()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@pytest.mark.parametrize("seconds", [3, pytest.param(25, marks=pytest.mark.slow)])
def test_a_run_rides_out_a_database_outage(tmp_path, pg_url, source, prefect_api_url, seconds):
    url = make_url(pg_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        gate = tmp_path / "hold"
        gate.touch()
        run = Extraction(tmp_path, "run", through_proxy, source, api_url=prefect_api_url, gate=gate)
        wait_until(lambda: model_calls_begun(tmp_path) >= 2, run, what="model calls under way")
        cut_at = time.monotonic()
        proxy.cut(seconds)
        gate.unlink()  # the answers are ready while the database is away
        assert run.wait(seconds + 60) == 0, run.stderr()
        assert time.monotonic() - cut_at > seconds  # it waited the outage out
        assert "database unavailable while trying to" in run.stderr()  # the retries, in the log
    finally:
        proxy.close()
    assert {status for status, _, _ in runs(pg_url).values()} == {"completed"}
    assert_each_document_extracted_once(pg_url, tmp_path)
