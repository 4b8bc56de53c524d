"""Baseline crop policies: what a learned policy must beat.

- `full`:   no crop; the reader sees only the page at its budget.
- `center`: a centred box of fixed side (percent of width and height).
- `random`: a random box, seeded by page size and question so re-runs give the same box.
- `oracle`: the gold value box enlarged to a minimum area (evaluation only: needs gold).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from cropvlm.box import Box
from cropvlm.policies.base import CropRequest, Proposal


class FullPagePolicy:
    version = "full"

    def propose(self, requests: Sequence[CropRequest]) -> list[Proposal]:
        return [Proposal(box=None, text="[0, 0, 100, 100].") for _ in requests]


class CenterPolicy:
    def __init__(self, side: float = 50.0) -> None:
        if not 1.0 <= side <= 100.0:
            raise ValueError(f"center side must be in [1, 100] percent, got {side}")
        self.side = side  # percent of page width and of page height
        self.version = f"center@{side:g}"
        half = side / 2
        self._box = Box(50 - half, 50 - half, 50 + half, 50 + half)

    def propose(self, requests: Sequence[CropRequest]) -> list[Proposal]:
        return [Proposal(box=self._box, text=self._box.format()) for _ in requests]


class RandomPolicy:
    """Sides drawn uniformly in [min_side, max_side] percent, position uniform on the page."""

    def __init__(self, seed: int = 0, min_side: float = 20.0, max_side: float = 60.0) -> None:
        self.seed, self.min_side, self.max_side = seed, min_side, max_side
        self.version = f"random@{seed}"

    def propose(self, requests: Sequence[CropRequest]) -> list[Proposal]:
        return [self._propose_one(r) for r in requests]

    def _propose_one(self, request: CropRequest) -> Proposal:
        # Seed from the request's content, not call order, so a re-run proposes the same box.
        key = f"{self.seed}|{request.page.size}|{request.field}|{request.question}"
        rng = random.Random(hashlib.sha256(key.encode()).digest())
        width = rng.uniform(self.min_side, self.max_side)
        height = rng.uniform(self.min_side, self.max_side)
        x1, y1 = rng.uniform(0, 100 - width), rng.uniform(0, 100 - height)
        box = Box.clamped(x1, y1, x1 + width, y1 + height)
        return Proposal(box=box, text=box.format())


class OraclePolicy:
    """Gold value box grown to at least `min_area` of the page (same centre, clamped).

    Evaluation only: without a gold box it falls back to the full page, flagged invalid.
    """

    def __init__(self, min_area: float = 0.04, margin: float = 1.0) -> None:
        self.min_area, self.margin = min_area, margin  # fraction of page; percent points
        self.version = f"oracle@{min_area:g}"

    def propose(self, requests: Sequence[CropRequest]) -> list[Proposal]:
        proposals = []
        for request in requests:
            if request.gold_box is None:
                proposals.append(Proposal(box=None, text="", valid=False))
                continue
            box = request.gold_box.padded(self.margin)
            if box.area < self.min_area:
                box = box.scaled(self.min_area / box.area)
            proposals.append(Proposal(box=box, text=box.format()))
        return proposals
