"""`decode="static"`: generation with a static KV cache (which transformers compiles
into CUDA graphs on a GPU) gives the answers, confidences and boxes of the default dynamic
cache, with left padding, pre-encoded images and both models."""

from __future__ import annotations

import os
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from cropvlm.policies.base import CropRequest  # noqa: E402
from cropvlm.readers.base import ReadRequest  # noqa: E402
from cropvlm.templates import FieldSpec  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import tiny_models  # noqa: E402

pytestmark = pytest.mark.usefixtures("offline")

SPECS = [FieldSpec("total", "What is the TOTAL amount?", "amount"), FieldSpec("date", "When?", "date")]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, offline):
    return str(tiny_models.build_idefics3(tmp_path_factory.mktemp("static-decode")))


def static_caches(monkeypatch) -> list[int]:
    """Counts the static caches transformers makes (one per `generate` that uses one)."""
    from transformers import cache_utils

    made: list[int] = []
    init = cache_utils.StaticCache.__init__
    monkeypatch.setattr(cache_utils.StaticCache, "__init__",
                        lambda self, *a, **k: made.append(1) or init(self, *a, **k))
    return made


def both_ways(model_owner, run, monkeypatch):
    made = static_caches(monkeypatch)
    dynamic = run()
    assert made == []
    model_owner.decode = "static"
    try:
        static = run()
    finally:
        model_owner.decode = "dynamic"
    assert made  # the static path was taken
    return dynamic, static


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_reader_answers_are_those_of_the_dynamic_cache(checkpoint, monkeypatch, device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from cropvlm.hf import HfReader

    # fp32 on CUDA too: compiled bf16 kernels may round differently from eager ones
    reader = HfReader(checkpoint, batch_size=16, max_new_tokens=6, prefetch=False, device=device, dtype="float32")
    pages = [Image.effect_noise((60 + 11 * i, 80), 30 + 9 * i).convert("RGB") for i in range(3)]
    batch = [ReadRequest(p, p.crop((4, 6, 40 + i, 50)), spec, crop_box=(4, 6, 40 + i, 50))
             for i, p in enumerate(pages) for spec in SPECS]
    batch.append(ReadRequest(pages[0], None, SPECS[1]))  # page alone: a shorter prompt, left-padded
    dynamic, static = both_ways(reader, lambda: reader.answer(batch), monkeypatch)
    assert [a.text for a in static] == [a.text for a in dynamic]
    assert [a.confidence for a in static] == pytest.approx([a.confidence for a in dynamic], rel=1e-3, abs=1e-4)
    assert len({a.text for a in dynamic}) > 1


def test_policy_boxes_are_those_of_the_dynamic_cache(checkpoint, monkeypatch):
    from cropvlm.hf import HfPolicy

    policy = HfPolicy(checkpoint, batch_size=16, max_new_tokens=8, prefetch=False)
    pages = [Image.effect_noise((70, 50 + 13 * i), 50 + 5 * i).convert("RGB") for i in range(3)]
    requests = [CropRequest(p, spec.question, spec.field) for p in pages for spec in SPECS]
    dynamic, static = both_ways(policy, lambda: policy.propose(requests), monkeypatch)
    assert [p.text for p in static] == [p.text for p in dynamic]
    assert len({p.text for p in dynamic}) > 1
