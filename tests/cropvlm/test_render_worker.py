"""render_within: the same pages as rendering in process, and a limit that really stops MuPDF."""

import os
import signal
import time

import pymupdf
import pytest

from cropvlm import render_worker
from cropvlm.errors import DocumentError
from cropvlm.render import RenderConfig, render_document
from cropvlm.render_worker import DocumentTimeoutError, render_within
from tests.cropvlm.test_render import CYCLIC_PDF, make_image, make_pdf


def slow_pdf() -> bytes:
    """One page that takes MuPDF seconds to render (thousands of large filled circles)."""
    doc = pymupdf.open()
    page = doc.new_page(width=2000, height=2000)
    for i in range(400):
        page.draw_circle((i * 7 % 2000, i * 5 % 2000), 900, fill=(0.5, 0.5, 0.5))
    return doc.tobytes()


@pytest.mark.parametrize("data", [make_pdf(pages=2), make_image("TIFF", frames=2)])
def test_pages_are_those_rendered_in_process(data):
    inside, outside = render_document(data), render_within(data, RenderConfig(), seconds=30)
    assert outside.media_type == inside.media_type
    assert [p.tobytes() for p in outside.pages] == [p.tobytes() for p in inside.pages]


def test_document_errors_come_back_with_their_message():
    with pytest.raises(DocumentError, match="cycle in page tree"):
        render_within(CYCLIC_PDF, RenderConfig(), seconds=30)
    with pytest.raises(DocumentError, match="empty file"):
        render_within(b"", RenderConfig(), seconds=30)


def test_a_render_past_its_time_is_stopped_and_the_child_killed():
    data = slow_pdf()
    started = time.perf_counter()
    with pytest.raises(DocumentTimeoutError, match="took longer than 0.5 s"):
        render_within(data, RenderConfig(dpi=300), seconds=0.5)
    assert time.perf_counter() - started < 3
    assert not [child for child in render_worker._CONTEXT.active_children()]


def test_a_renderer_that_dies_fails_its_document(monkeypatch):
    monkeypatch.setattr(render_worker, "render_pages", lambda data, config: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(DocumentError, match="renderer died .*exit code -9"):
        render_within(make_pdf(), RenderConfig(), seconds=30)
