"""Hugging Face policy and reader interleave their calls in `crop_then_answer` (the policy
generates for the next wave while the reader's inputs for this one are encoded): same boxes,
crops and answers as the plain order, the GPU order P1, P2, R1, P3, R2, ..., no thread left."""

from __future__ import annotations

import os
import sys
import threading

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from cropvlm.box import Box  # noqa: E402
from cropvlm.jobs import PREFETCH_THREAD  # noqa: E402
from cropvlm.pipeline import PageRef, crop_then_answer, interleaves  # noqa: E402
from cropvlm.policies.base import Proposal  # noqa: E402
from cropvlm.templates import FieldSpec  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import tiny_models  # noqa: E402

pytestmark = pytest.mark.usefixtures("offline")

FIELDS = [FieldSpec("total", "What is the TOTAL?", "amount"), FieldSpec("date", "When?", "date"),
          FieldSpec("vendor", "Who issued it?")]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, offline):
    folder = tmp_path_factory.mktemp("interleave")
    return str(tiny_models.build_idefics3(folder / "policy", seed=0)), str(tiny_models.build_idefics3(folder / "reader", seed=1))


def models(checkpoints, prefetch: bool, policy_batch: int = 2, reader_batch: int = 3):
    from cropvlm.hf import HfPolicy, HfReader

    class BoxedPolicy(HfPolicy):
        """Random weights emit no box: a box per field from the output's length, so crops differ."""

        def proposal(self, text, request):
            left = float(len(text) % 40)
            return Proposal(Box(left, 10.0, left + 50.0, 60.0), text)

    policy = BoxedPolicy(checkpoints[0], batch_size=policy_batch, max_new_tokens=6, prefetch=prefetch)
    reader = HfReader(checkpoints[1], batch_size=reader_batch, max_new_tokens=4, prefetch=prefetch)
    return policy, reader


def pages(count: int) -> list[PageRef]:
    out = []
    for i in range(count):
        image = Image.effect_noise((120 + 9 * i, 160), 40 + i).convert("RGB")
        out.append(PageRef(f"doc-{i}", 1, image))
    return out


def summary(batch):
    return [(r.doc, r.spec.field, r.proposal, r.crop_pixels, r.answer.text, r.answer.value) for r in batch.results]


def test_interleaved_calls_give_the_plain_order_s_results(checkpoints, monkeypatch):
    batch = pages(3)  # 9 requests: policy waves of 2 (5 waves), reader calls of up to 3 per wave
    plain_policy, plain_reader = models(checkpoints, prefetch=False)
    assert not interleaves(plain_policy, plain_reader, 9)
    plain = crop_then_answer(batch, FIELDS, plain_policy, plain_reader)

    policy, reader = models(checkpoints, prefetch=True)
    assert interleaves(policy, reader, 9) and not interleaves(policy, reader, 2)  # one policy call: plain
    calls: list[tuple[str, str]] = []
    for name, model in (("policy", policy.model), ("reader", reader.model)):
        generate = model.generate
        monkeypatch.setattr(model, "generate", lambda *a, _g=generate, _n=name, **k: calls.append(
            (_n, threading.current_thread().name)) or _g(*a, **k))
    from cropvlm.hf import scoring

    encode = scoring.encode_ahead
    encodes: list[tuple[str, str]] = []
    monkeypatch.setattr(scoring, "encode_ahead", lambda loaded, *a, **k: encodes.append(
        ("policy" if loaded is policy._loaded else "reader", threading.current_thread().name)) or encode(loaded, *a, **k))
    mixed = crop_then_answer(batch, FIELDS, policy, reader)

    assert summary(mixed) == summary(plain)
    # the reader's calls group other requests (waves of 2, not calls of 3): padding moves float noise only
    assert [r.answer.confidence for r in mixed.results] == pytest.approx([r.answer.confidence for r in plain.results],
                                                                        rel=1e-4)
    assert all(r.crop is not None for r in mixed.results)  # the reader did read crops
    assert [name for name, _ in calls] == ["policy", "policy", "reader", "policy", "reader", "policy", "reader",
                                           "policy", "reader", "reader"]
    assert all(not thread.startswith(PREFETCH_THREAD) for _, thread in calls)
    assert encodes[0] == ("policy", threading.current_thread().name)
    assert ("reader", encodes[2][1]) == encodes[2] and encodes[2][1].startswith(PREFETCH_THREAD)
    assert policy.proposed_count == 9
    assert mixed.policy_seconds > 0 and mixed.reader_seconds > 0
    assert not [t for t in threading.enumerate() if t.name.startswith(PREFETCH_THREAD)]


def test_a_reader_failure_in_an_interleaved_batch_stops_cleanly(checkpoints, monkeypatch):
    policy, reader = models(checkpoints, prefetch=True)

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: device-side assert")

    monkeypatch.setattr(reader.model, "generate", broken)
    with pytest.raises(RuntimeError, match="device-side assert"):
        crop_then_answer(pages(2), FIELDS, policy, reader)
    assert not [t for t in threading.enumerate() if t.name.startswith(PREFETCH_THREAD)]
