"""Small, fast pieces for the training tests: pages with coloured value patches and a
reader that can only "read" a patch its image shows whole.

The reader is a real image reader in miniature: it counts the field's colour in the crop
(or the page, without a crop) and answers only when the crop holds the whole patch. So a
box that cuts the value loses the answer, exactly what GRPO must learn from, in
milliseconds instead of OCR's seconds per call.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cropvlm.box import Box
from cropvlm.labels import Label
from cropvlm.readers.base import Answer, ReadRequest
from cropvlm.templates import FieldSpec

COLOURS = {"alpha": (220, 30, 30), "beta": (30, 30, 220)}
SPECS = {
    "alpha": FieldSpec("alpha", "Where is the red patch?", "text"),
    "beta": FieldSpec("beta", "Where is the blue patch?", "text"),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def patch_page(seed: int, size: tuple[int, int] = (192, 256)) -> tuple[Image.Image, dict[str, Box]]:
    """A white page with one 20 px square per field at random places; their percent boxes."""
    rng = random.Random(seed)
    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    boxes = {}
    for field, colour in COLOURS.items():
        x, y = rng.randint(5, size[0] - 30), rng.randint(5, size[1] - 30)
        draw.rectangle([x, y, x + 19, y + 19], fill=colour)
        boxes[field] = Box.from_pixels(x, y, x + 20, y + 20, *size)
    return page, boxes


def patch_dataset(count: int, seed: int = 0) -> tuple[dict[str, bytes], list[Label]]:
    """`count` PNG documents and their labels (answer = the field name in capitals, gold box)."""
    import io

    files, labels = {}, []
    for i in range(count):
        page, boxes = patch_page(seed * 1000 + i)
        buffer = io.BytesIO()
        page.save(buffer, format="PNG")
        files[f"doc{i}.png"] = buffer.getvalue()
        for field, box in boxes.items():
            labels.append(Label(f"doc{i}.png", field, field.upper(), SPECS[field].question, 1, box))
    return files, labels


class PatchReader:
    """Answers FIELD when its image shows the field's whole patch, else ""; can be told to fail."""

    version = "test:patch-reader"

    def __init__(self, fail_after_calls: int | None = None) -> None:
        self.calls = 0
        self.fail_after_calls = fail_after_calls

    def answer(self, requests: Sequence[ReadRequest]) -> list[Answer]:
        self.calls += 1
        if self.fail_after_calls is not None and self.calls > self.fail_after_calls:
            raise RuntimeError("reader went away")
        return [self._one(r) for r in requests]

    @staticmethod
    def _count(image: Image.Image, colour) -> int:
        return int(np.all(np.asarray(image.convert("RGB")) == colour, axis=2).sum())

    def _one(self, request: ReadRequest) -> Answer:
        colour = COLOURS[request.spec.field]
        whole = self._count(request.page, colour)
        seen = whole if request.crop is None else self._count(request.crop, colour)
        if whole and seen == whole:
            return Answer(request.spec.field.upper(), request.spec.field.upper(), 1.0, "crop")
        return Answer("", None, 0.0, "crop")
