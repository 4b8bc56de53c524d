"""`Box`: a crop region in percent of the page, in the paper's text format.

The crop policy speaks in `"[x1, y1, x2, y2]."` with integers in percent (0-100) of page
width (x) and height (y), origin at the top-left corner. A box is valid only if it has
four numbers, all in [0, 100], with x2 > x1 and y2 > y1 (the paper's box format,
CropVLM, arXiv 2511.19820).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from cropvlm.errors import BoxError

_NUMBER = r"\s*(-?\d+(?:\.\d+)?)\s*"
_BOX_TEXT = re.compile(r"\[" + ",".join([_NUMBER] * 4) + r"\]")


@dataclass(frozen=True)
class Box:
    """Percent coordinates of a region: x of page width, y of page height, top-left origin."""

    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        coords = (self.x1, self.y1, self.x2, self.y2)
        if not all(isinstance(c, (int, float)) and math.isfinite(c) for c in coords):
            raise BoxError(f"box coordinates must be finite numbers, got {coords}")
        if not all(0.0 <= c <= 100.0 for c in coords):
            raise BoxError(f"box coordinates must lie in [0, 100] percent, got {coords}")
        if not (self.x2 > self.x1 and self.y2 > self.y1):
            raise BoxError(f"box needs x2 > x1 and y2 > y1, got {coords}")

    # --- text format of the policy ---------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> Box:
        """Parse the first `[x1, y1, x2, y2]` in policy output; raise BoxError if invalid."""
        match = _BOX_TEXT.search(text or "")
        if match is None:
            raise BoxError(f"no '[x1, y1, x2, y2]' box in policy output {text!r}")
        return cls(*(float(g) for g in match.groups()))

    def format(self) -> str:
        """The paper's output text, integers in percent: `"[12, 5, 40, 9]."`."""
        return "[{}, {}, {}, {}].".format(*(round(c) for c in self.as_tuple()))

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    # --- geometry -----------------------------------------------------------------------
    @classmethod
    def clamped(cls, x1: float, y1: float, x2: float, y2: float, min_size: float = 1.0) -> Box:
        """Clamp arbitrary percent coordinates into a valid box at least `min_size` wide/high."""
        x1, x2 = sorted((x1, x2))
        y1, y2 = sorted((y1, y2))
        x1, x2 = _clamp_span(x1, x2, min_size)
        y1, y2 = _clamp_span(y1, y2, min_size)
        return cls(x1, y1, x2, y2)

    @classmethod
    def from_pixels(cls, x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> Box:
        """Pixel box on a `width` x `height` page to a clamped percent box."""
        return cls.clamped(100 * x1 / width, 100 * y1 / height, 100 * x2 / width, 100 * y2 / height)

    @property
    def area(self) -> float:
        """Fraction of the page (0-1) that the box covers."""
        return (self.x2 - self.x1) * (self.y2 - self.y1) / 10_000

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Pixel box (left, top, right, bottom) on a `width` x `height` page, never empty."""
        left = min(int(math.floor(self.x1 * width / 100)), width - 1)
        top = min(int(math.floor(self.y1 * height / 100)), height - 1)
        right = max(int(math.ceil(self.x2 * width / 100)), left + 1)
        bottom = max(int(math.ceil(self.y2 * height / 100)), top + 1)
        return left, top, min(right, width), min(bottom, height)

    def scaled(self, area_factor: float) -> Box:
        """Same centre, area multiplied by `area_factor` (sides by its square root), clamped.

        A box that would leave the page is shifted back inside before clamping, so it keeps
        its size where the page allows (the paper's enlargement of small boxes).
        """
        side = math.sqrt(area_factor)
        cx, cy = self.center
        half_w = min((self.x2 - self.x1) * side, 100.0) / 2
        half_h = min((self.y2 - self.y1) * side, 100.0) / 2
        cx = min(max(cx, half_w), 100.0 - half_w)
        cy = min(max(cy, half_h), 100.0 - half_h)
        return Box.clamped(cx - half_w, cy - half_h, cx + half_w, cy + half_h)

    def padded(self, margin: float) -> Box:
        """Grow each side by `margin` percent points, clamped to the page."""
        return Box.clamped(self.x1 - margin, self.y1 - margin, self.x2 + margin, self.y2 + margin)

    def overlap(self, other: Box) -> float:
        """Fraction of the page (0-1) that both boxes cover."""
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        return ix * iy / 10_000

    def iou(self, other: Box) -> float:
        inter = self.overlap(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def contains(self, other: Box) -> bool:
        return (
            self.x1 <= other.x1 and self.y1 <= other.y1 and self.x2 >= other.x2 and self.y2 >= other.y2
        )


FULL_PAGE = Box(0.0, 0.0, 100.0, 100.0)


def _clamp_span(low: float, high: float, min_size: float) -> tuple[float, float]:
    low, high = max(0.0, min(low, 100.0)), max(0.0, min(high, 100.0))
    if high - low < min_size:
        mid = min(max((low + high) / 2, min_size / 2), 100.0 - min_size / 2)
        low, high = mid - min_size / 2, mid + min_size / 2
    return low, high
