"""The reader interface: answer a question from the page and its crop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from cropvlm.templates import FieldSpec


@dataclass(frozen=True)
class ReadRequest:
    page: Image.Image  # full-resolution page, RGB; requests of one page share this object
    crop: Image.Image | None  # region cut from `page` at full resolution; None = no crop
    spec: FieldSpec  # question, answer type and aliases
    # where `crop` lies in `page`, in pixels (left, top, right, bottom), when it was cut there:
    # a GPU reader slices the crop from the page it already uploaded instead of converting it
    crop_box: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class Answer:
    text: str  # the answer as the reader gives it ("" when it found nothing)
    value: str | None  # normalised by the field's type (see cropvlm.normalize); None if unparsable
    confidence: float  # 0-1, comparable across pages of one document for one reader
    source: str = ""  # where it came from, e.g. "crop" or "page" (diagnostics)


class Reader(Protocol):
    version: str  # e.g. "ocr:rapidocr@768"; goes into every answer's provenance

    def answer(self, requests: Sequence[ReadRequest]) -> list[Answer]:
        """One answer per request, in order. Requests for one page come together."""
        ...
