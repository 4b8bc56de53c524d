"""A TCP proxy on loopback that a test can cut (connections refused) or freeze (bytes held)."""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target`; `cut(seconds)` takes it down for a while,
    `freeze(seconds)` keeps every connection open but passes no byte (a SIGSTOPped server)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self._sockets, self._lock = target, [], threading.Lock()
        self._up, self._flowing = threading.Event(), threading.Event()
        self._flowing.set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._listener.settimeout(0.1)  # the accept loop looks at _up ten times a second
        self._up.set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, seconds: float | None) -> None:
        """Drop every connection and refuse new ones for `seconds` (None: until `reopen`)."""
        self._up.clear()
        with self._lock:
            self._listener.close()  # nothing listens: connecting is refused at once
            for sock in self._sockets:
                _close(sock)
            self._sockets.clear()
        if seconds is not None:
            threading.Timer(seconds, self.reopen).start()

    def freeze(self, seconds: float | None = None) -> None:
        """Hold every byte and every new connection (for `seconds`, or until `thaw`)."""
        self._flowing.clear()
        if seconds is not None:
            threading.Timer(seconds, self.thaw).start()

    def thaw(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self.cut(None)

    def reopen(self) -> None:
        if self._closed:
            return
        with self._lock:
            self._listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
            self._listener.settimeout(0.1)
        self._up.set()

    def _accept(self) -> None:
        while not self._closed:
            if not (self._up.wait(0.1) and self._flowing.wait(0.1)):
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
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
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
