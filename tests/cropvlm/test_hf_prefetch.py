"""HfReader's and HfPolicy's prefetch: the next chunk is encoded in one background thread
while the model generates; answers, boxes, order and errors are those of the plain loop."""

from __future__ import annotations

import io
import os
import sys
import threading

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from cropvlm.readers.base import ReadRequest  # noqa: E402
from cropvlm.templates import FieldSpec  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import tiny_models  # noqa: E402

pytestmark = pytest.mark.usefixtures("offline")

SPECS = (
    FieldSpec("total", "What is the TOTAL amount?", "amount"),
    FieldSpec("date", "What is the Invoice Date?", "date"),
    FieldSpec("vendor", "Who issued this receipt?"),
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, offline):
    return str(tiny_models.build_idefics3(tmp_path_factory.mktemp("idefics3")))


def requests(count: int) -> list[ReadRequest]:
    """Distinct pages (so chunks differ), every other one with a crop."""
    out = []
    for i in range(count):
        page = Image.new("RGB", (60 + 7 * i, 90), (255, 255 - 20 * i, 255))
        page.paste((200, 30 + 15 * i, 30), (5, 5, 40, 30))
        out.append(ReadRequest(page, page.crop((5, 5, 40, 30)) if i % 2 else None, SPECS[i % 3]))
    return out


def truncated_png() -> Image.Image:
    """Opens fine, fails when its pixels are read (as a half-downloaded file does)."""
    data = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(data, format="PNG")
    return Image.open(io.BytesIO(data.getvalue()[: len(data.getvalue()) // 2]))


def prefetch_threads() -> list[threading.Thread]:
    from cropvlm.jobs import PREFETCH_THREAD

    return [t for t in threading.enumerate() if t.name.startswith(PREFETCH_THREAD)]


def test_answers_are_identical_with_and_without_prefetch(checkpoint):
    from cropvlm.hf import HfReader

    batch = requests(7)  # chunks of 2: 4 chunks, the last one short
    on = HfReader(checkpoint, batch_size=2, max_new_tokens=6).answer(batch)
    off = HfReader(checkpoint, batch_size=2, max_new_tokens=6, prefetch=False).answer(batch)
    assert on == off  # text, value and confidence, exactly, in order
    whole = HfReader(checkpoint, batch_size=8, max_new_tokens=6).answer(batch)
    assert [a.text for a in on] == [a.text for a in whole]
    assert len({a.text for a in on}) > 1  # the chunks do differ
    assert not prefetch_threads()


def test_encoding_runs_one_chunk_ahead_in_one_background_thread(checkpoint, monkeypatch):
    from cropvlm.hf import HfReader, scoring
    from cropvlm.jobs import PREFETCH_THREAD

    reader = HfReader(checkpoint, batch_size=2, max_new_tokens=4)
    events: list[tuple[str, str]] = []
    encode, generate = scoring.encode_ahead, reader.model.generate

    def spy_encode(*args, **kwargs):
        events.append(("encode", threading.current_thread().name))
        return encode(*args, **kwargs)

    def spy_generate(*args, **kwargs):
        events.append(("generate", threading.current_thread().name))
        return generate(*args, **kwargs)

    monkeypatch.setattr(scoring, "encode_ahead", spy_encode)
    monkeypatch.setattr(reader.model, "generate", spy_generate)
    reader.answer(requests(8))  # 4 chunks
    kinds = [kind for kind, _ in events]
    assert kinds.count("encode") == kinds.count("generate") == 4
    encoders = [name for kind, name in events if kind == "encode"]
    assert not encoders[0].startswith(PREFETCH_THREAD)  # nothing runs yet: the caller encodes the first
    assert all(name.startswith(PREFETCH_THREAD) for name in encoders[1:])
    assert all(not name.startswith(PREFETCH_THREAD) for kind, name in events if kind == "generate")
    for k in range(1, 4):  # chunk k is encoded only once chunk k - 2 has been generated: one ahead
        position = [i for i, kind in enumerate(kinds) if kind == "encode"][k]
        assert kinds[:position].count("generate") >= k - 1


def test_one_chunk_or_prefetch_off_starts_no_thread(checkpoint, monkeypatch):
    from cropvlm import jobs as prefetch_module
    from cropvlm.hf import HfReader

    def no_pool(*args, **kwargs):
        raise AssertionError("a thread pool was started")

    monkeypatch.setattr(prefetch_module, "ThreadPoolExecutor", no_pool)
    assert len(HfReader(checkpoint, batch_size=4, max_new_tokens=4).answer(requests(4))) == 4
    assert len(HfReader(checkpoint, batch_size=2, max_new_tokens=4, prefetch=False).answer(requests(4))) == 4
    assert HfReader(checkpoint, batch_size=2).answer([]) == []


@pytest.mark.parametrize("prefetch", [True, False])
def test_an_error_encoding_a_later_chunk_surfaces_with_its_requests(checkpoint, prefetch):
    from cropvlm.hf import HfReader

    batch = requests(5) + [ReadRequest(truncated_png(), None, SPECS[0])]  # chunks 0-1, 2-3, 4-5
    reader = HfReader(checkpoint, batch_size=2, max_new_tokens=4, prefetch=prefetch)
    with pytest.raises(OSError, match="truncated") as error:
        reader.answer(batch)
    assert "HfReader: encoding requests 4-5 (of 6) failed" in error.value.__notes__
    assert not prefetch_threads()
    assert len(reader.answer(batch[:5])) == 5  # the reader still works


def test_an_error_in_the_model_stops_the_prefetch_thread(checkpoint, monkeypatch):
    from cropvlm.hf import HfReader

    reader = HfReader(checkpoint, batch_size=2, max_new_tokens=4)
    calls = []

    def failing_generate(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(reader.model, "generate", failing_generate)
    with pytest.raises(RuntimeError, match="simulated"):
        reader.answer(requests(6))
    assert len(calls) == 1 and not prefetch_threads()


def test_policy_boxes_are_identical_with_and_without_prefetch(checkpoint, monkeypatch):
    from cropvlm.hf import HfPolicy, scoring
    from cropvlm.jobs import PREFETCH_THREAD
    from cropvlm.policies.base import CropRequest

    batch = [CropRequest(r.page, r.spec.question, r.spec.field) for r in requests(7)]
    threads: list[str] = []
    encode = scoring.encode_ahead

    def spy_encode(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return encode(*args, **kwargs)

    monkeypatch.setattr(scoring, "encode_ahead", spy_encode)
    on = HfPolicy(checkpoint, batch_size=2, max_new_tokens=8).propose(batch)  # 4 chunks
    assert sum(name.startswith(PREFETCH_THREAD) for name in threads) == 3  # all but the first
    threads.clear()
    off = HfPolicy(checkpoint, batch_size=2, max_new_tokens=8, prefetch=False).propose(batch)
    assert not any(name.startswith(PREFETCH_THREAD) for name in threads)
    whole = HfPolicy(checkpoint, batch_size=8, max_new_tokens=8).propose(batch)
    assert on == off  # raw text, box and validity, in order
    assert [p.text for p in on] == [p.text for p in whole]
    assert len({p.text for p in on}) > 1  # the chunks do differ
    assert not prefetch_threads()
