"""Idefics3 with one tile per image: each distinct image goes through the vision encoder once
per call (a page asked several questions, beside its crops), with the answers and boxes of
encoding every image of every request."""

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

SPECS = [FieldSpec("total", "What is the TOTAL?", "amount"), FieldSpec("date", "When?", "date"),
         FieldSpec("vendor", "Who issued it?")]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, offline):
    return str(tiny_models.build_idefics3(tmp_path_factory.mktemp("vision-once")))


def pages(count: int) -> list[Image.Image]:
    return [Image.effect_noise((70 + 9 * i, 90), 40 + 7 * i).convert("RGB") for i in range(count)]


def encoder_calls(model, monkeypatch) -> list[int]:
    """Images per call of the vision encoder, however the model reaches it."""
    seen: list[int] = []
    vision = model.model.vision_model
    forward = vision.forward
    monkeypatch.setattr(vision, "forward", lambda *a, **k: seen.append(int(k["pixel_values"].shape[0])) or forward(*a, **k))
    return seen


def test_the_reader_encodes_each_page_once_with_the_same_answers(checkpoint, monkeypatch):
    from cropvlm.hf import HfReader

    reader = HfReader(checkpoint, batch_size=16, max_new_tokens=5, prefetch=False)
    batch = []
    for page in pages(3):
        for spec in SPECS:  # each page: three questions, each with its own crop
            batch.append(ReadRequest(page, page.crop((5, 5, 45 + len(batch), 60)), spec, crop_box=(5, 5, 45 + len(batch), 60)))
    batch.append(ReadRequest(batch[0].page, None, SPECS[0]))  # the page alone
    calls = encoder_calls(reader.model, monkeypatch)
    once = reader.answer(batch)
    assert calls == [3 + 9]  # 3 pages + 9 crops, not 10 pages + 9 crops
    reader._loaded.vision_once = False
    try:
        calls.clear()
        every = reader.answer(batch)
    finally:
        reader._loaded.vision_once = True
    assert calls == [10 + 9]
    assert [a.text for a in once] == [a.text for a in every]
    assert [a.confidence for a in once] == pytest.approx([a.confidence for a in every], rel=1e-4)
    assert len({a.text for a in once}) > 1


def test_the_policy_encodes_each_page_once_with_the_same_boxes(checkpoint, monkeypatch):
    from cropvlm.hf import HfPolicy

    policy = HfPolicy(checkpoint, batch_size=16, max_new_tokens=8, prefetch=False)
    requests = [CropRequest(page, spec.question, spec.field) for page in pages(4) for spec in SPECS]
    calls = encoder_calls(policy.model, monkeypatch)
    once = policy.propose(requests)
    assert calls == [4]
    policy._loaded.vision_once = False
    try:
        every = policy.propose(requests)
    finally:
        policy._loaded.vision_once = True
    assert calls == [4, 12]
    assert [p.text for p in once] == [p.text for p in every]


def test_distinct_images_get_the_processor_s_own_tokens_and_pixels(checkpoint):
    from cropvlm.hf import loading, prompts, scoring

    loaded = loading.load(checkpoint, cache=False)
    first, second = pages(2)
    crop = first.crop((3, 4, 50, 40))
    rows = [[first, crop], [first], [second, second.crop((0, 0, 30, 30))], [first, crop]]
    rows.append([second])
    texts = [prompts.render(loaded.processor, prompts.reader_text(q), len(r))
             for q, r in zip(["Total?", "When?", "Who?", "Total?", "What is the date of it?"], rows)]
    assert texts[0] == texts[3]  # one prompt tokenised for both rows
    assert scoring.distinct_applies(loaded, texts, rows)
    for side in ("right", "left"):  # the longest prompt is asked once, shorter ones are padded
        reference = scoring.encode(loaded, texts, rows, padding_side=side)  # the processor on every image
        distinct = scoring.encode_distinct(loaded, texts, rows, padding_side=side)
        for key in ("input_ids", "attention_mask"):
            assert torch.equal(distinct[key], reference[key]), (side, key)
    assert distinct["pixel_values"].shape[:2] == (4, 1)  # first, crop, second, its crop
    assert distinct["image_index"].tolist() == [0, 1, 0, 2, 3, 0, 1, 2]
    k = 0
    for b, row in enumerate(rows):
        for j in range(len(row)):
            assert torch.equal(distinct["pixel_values"][distinct["image_index"][k], 0], reference["pixel_values"][b, j])
            assert torch.equal(distinct["pixel_attention_mask"][distinct["image_index"][k], 0],
                               reference["pixel_attention_mask"][b, j])
            k += 1


def test_images_split_into_tiles_are_left_to_the_processor(tmp_path, offline):
    from cropvlm.hf import loading, prompts, scoring

    loaded = loading.load(str(tiny_models.build_idefics3(tmp_path / "tiles")), cache=False)
    assert scoring.one_tile_per_image(loaded)
    page = pages(1)[0]
    text = prompts.render(loaded.processor, prompts.policy_text("Where?"), 1)
    assert scoring.distinct_applies(loaded, [text, text], [[page], [page]])
    assert not scoring.distinct_applies(loaded, [text, text], [[page, page], [page]])  # placeholders do not match
    loaded.processor.image_processor.size = {"longest_edge": 64}  # larger than the 32 px tile: pages are split
    assert not scoring.one_tile_per_image(loaded)
    batch = scoring.encode_ahead(loaded, [text, text], [[page], [page]], padding_side="left")
    batch = batch.batch if isinstance(batch, scoring.Encoded) else batch  # CUDA: made on the side stream
    assert "image_index" not in batch and batch["pixel_values"].shape[:2] == (2, 5)  # 2 x 2 tiles + global
