"""The crop-policy interface: look at a page and a question, propose a box."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from cropvlm.box import Box


@dataclass(frozen=True)
class CropRequest:
    page: Image.Image  # full-resolution page, RGB
    question: str
    field: str
    gold_box: Box | None = None  # only the oracle baseline reads it (evaluation)


@dataclass(frozen=True)
class Proposal:
    box: Box | None  # None: no crop, the reader sees the whole page
    text: str  # the policy's raw output, `"[x1, y1, x2, y2]."` for box-emitting policies
    valid: bool = True  # False: the output did not parse and fell back to the full page


class Policy(Protocol):
    version: str  # goes into every answer's provenance, e.g. "center@0.5"

    def propose(self, requests: Sequence[CropRequest]) -> list[Proposal]:
        """One proposal per request, in order; batched where the backend allows."""
        ...


def proposal_from_text(text: str) -> Proposal:
    """Parse policy output; an invalid box falls back to the full page and is flagged."""
    from cropvlm.errors import BoxError

    try:
        box = Box.parse(text)
    except BoxError:
        return Proposal(box=None, text=text, valid=False)
    return Proposal(box=box, text=text)
