"""Letterboxing, the centre grid and the size bins: the map between boxes and choices.

Pure numpy, shared by training (torch) and inference (ONNX Runtime), so both decode boxes
the same way. The page is scaled so its long side is `input_size` and placed at the
top-left of a square canvas; a grid cell whose centre lies outside the page is never chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from cropvlm.box import Box


@dataclass(frozen=True)
class Geometry:
    input_size: int = 512  # square canvas side fed to the network
    stride: int = 16  # canvas pixels per grid cell
    size_bins: int = 14
    min_side: float = 0.03  # smallest box side, as a fraction of the page side
    max_side: float = 1.0

    @property
    def grid(self) -> int:
        return self.input_size // self.stride

    def bin_values(self) -> np.ndarray:
        """Side fraction of each size bin, log-spaced from min_side to max_side."""
        return np.geomspace(self.min_side, self.max_side, self.size_bins)

    def size_bin(self, fraction: float) -> int:
        """Nearest bin (in log space) of a side given as a fraction of the page side."""
        fraction = min(max(fraction, self.min_side), self.max_side)
        return int(np.argmin(np.abs(np.log(self.bin_values()) - math.log(fraction))))


@dataclass(frozen=True)
class Letterbox:
    """Where a page sits on the canvas: its scaled width and height in canvas pixels."""

    width: int
    height: int


def letterbox(page: Image.Image, geometry: Geometry) -> tuple[np.ndarray, Letterbox]:
    """Page -> [3, S, S] float32 (ink, x within page, y within page) and its placement.

    Ink (1 - grey) makes the padding 0; the two coordinate channels say where on the page
    a pixel is (0..1 inside it), which a plain CNN cannot tell by itself.
    """
    size = geometry.input_size
    scale = size / max(page.size)
    width, height = max(1, round(page.size[0] * scale)), max(1, round(page.size[1] * scale))
    grey = page.convert("L").resize((width, height), Image.Resampling.BILINEAR)
    canvas = np.zeros((3, size, size), dtype=np.float32)
    canvas[0, :height, :width] = 1.0 - np.asarray(grey, dtype=np.float32) / 255.0
    canvas[1] = (np.arange(size, dtype=np.float32) / width)[None, :]
    canvas[2] = (np.arange(size, dtype=np.float32) / height)[:, None]
    return canvas, Letterbox(width, height)


def cell_mask(placement: Letterbox, geometry: Geometry) -> np.ndarray:
    """[grid * grid] bool: cells whose centre lies on the page."""
    centres = (np.arange(geometry.grid) + 0.5) * geometry.stride
    inside_x = (centres < placement.width) | (np.arange(geometry.grid) == 0)  # a sliver of a page
    inside_y = (centres < placement.height) | (np.arange(geometry.grid) == 0)  # still has one cell
    return (inside_y[:, None] & inside_x[None, :]).reshape(-1)


def cell_centre(cell: int, placement: Letterbox, geometry: Geometry) -> tuple[float, float]:
    """Percent of the page at the centre of grid cell `cell` (row-major)."""
    row, col = divmod(int(cell), geometry.grid)
    x = (col + 0.5) * geometry.stride / placement.width * 100
    y = (row + 0.5) * geometry.stride / placement.height * 100
    return min(x, 100.0), min(y, 100.0)


def decode_box(cell: int, width_bin: int, height_bin: int, placement: Letterbox, geometry: Geometry) -> Box:
    """The box of three choices: centred on the cell, sides from the bins, shifted inside
    the page so it keeps its size (as `Box.scaled` does), integer percent like the text."""
    values = geometry.bin_values()
    cx, cy = cell_centre(cell, placement, geometry)
    half_w, half_h = 50.0 * values[width_bin], 50.0 * values[height_bin]
    cx = min(max(cx, half_w), 100.0 - half_w)
    cy = min(max(cy, half_h), 100.0 - half_h)
    box = Box.clamped(cx - half_w, cy - half_h, cx + half_w, cy + half_h, min_size=1.0)
    return Box.parse(box.format())  # exactly what the text says: integers, still valid


def encode_box(box: Box, placement: Letterbox, geometry: Geometry) -> tuple[int, int, int]:
    """The choices closest to `box` (training targets): centre cell, width bin, height bin."""
    cx, cy = box.center
    col = int(cx / 100 * placement.width // geometry.stride)
    row = int(cy / 100 * placement.height // geometry.stride)
    last_col = max(0, math.ceil(placement.width / geometry.stride - 0.5) - 1)
    last_row = max(0, math.ceil(placement.height / geometry.stride - 0.5) - 1)
    col, row = min(max(col, 0), last_col), min(max(row, 0), last_row)
    cell = row * geometry.grid + col
    return cell, geometry.size_bin((box.x2 - box.x1) / 100), geometry.size_bin((box.y2 - box.y1) / 100)
