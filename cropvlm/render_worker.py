"""Render a document in a child process that is killed when it runs past a time limit.

    rendered = render_within(data, RenderConfig(), seconds=600)   # DocumentError when late

MuPDF holds the GIL while it renders, so a thread cannot be timed out (the waiting thread
does not even run); a forked child can be killed. It sends its pages one at a time through
a pipe, so the worker holds only finished RGB pages, never MuPDF's pixmaps. A child whose
parent died stops at its CPU-time limit (RLIMIT_CPU), so no renderer outlives its work.
"""

from __future__ import annotations

import math
import multiprocessing
import resource
import signal
import time

from PIL import Image

from cropvlm.errors import DocumentError
from cropvlm.render import RenderConfig, RenderedDocument, render_pages, sniff_media_type

# fork: the child starts at once and shares the document's bytes; it touches no lock that
# another thread of the worker could hold (MuPDF runs under the GIL, which the forking thread holds).
_CONTEXT = multiprocessing.get_context("fork")


class DocumentTimeoutError(DocumentError):
    """A document that took longer than its time limit to read or render."""


def render_within(data: bytes, config: RenderConfig, seconds: float) -> RenderedDocument:
    media_type = sniff_media_type(data)  # cheap, and its error needs no child
    receiver, sender = _CONTEXT.Pipe(duplex=False)
    child = _CONTEXT.Process(target=_render_child, args=(data, config, seconds, sender), daemon=True)
    child.start()
    sender.close()  # the child holds the only writer: its death is EOF here
    deadline, pages = time.monotonic() + seconds, []
    try:
        while True:
            if not receiver.poll(max(0.0, deadline - time.monotonic())):
                raise DocumentTimeoutError(
                    f"rendering took longer than {seconds:g} s (document_seconds): stopped after "
                    f"{len(pages)} pages")
            try:
                message = receiver.recv()
            except EOFError:
                child.join(5)
                raise DocumentError(f"the renderer died while rendering page {len(pages) + 1} "
                                    f"(exit code {child.exitcode})") from None
            if message[0] == "error":
                raise DocumentError(message[1])
            if message[0] == "done":
                return RenderedDocument(media_type, pages)
            pages.append(Image.frombytes("RGB", message[1], receiver.recv_bytes()))
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()


def _render_child(data: bytes, config: RenderConfig, seconds: float, sender) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group; the parent stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    limit = math.ceil(seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (limit, limit))  # an orphan still stops
    try:
        for page in render_pages(data, config):
            sender.send(("page", page.size))
            sender.send_bytes(page.tobytes())
        sender.send(("done",))
    except DocumentError as exc:
        sender.send(("error", str(exc)))
    except Exception as exc:  # noqa: BLE001 - a renderer bug fails this document, named, not the worker
        sender.send(("error", f"renderer failed: {type(exc).__name__}: {exc}"))
    finally:
        sender.close()
