"""Cut crops out of full-resolution pages and make the thumbnails kept as provenance."""

from __future__ import annotations

import io

from PIL import Image

from cropvlm.box import Box

THUMBNAIL_SIDE = 384  # pixels, long side of the stored crop image


def cut_crop(page: Image.Image, box: Box) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The region of `page` under `box` (percent) and its pixel box (left, top, right, bottom)."""
    pixels = box.to_pixels(*page.size)
    return page.crop(pixels), pixels


def budget_size(size: tuple[int, int], budget: int | None) -> tuple[int, int]:
    """(width, height) of an image of `size` once its long side is `budget` (None: as is)."""
    if budget is None or max(size) == budget:
        return size
    scale = budget / max(size)
    return (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))


def resize_long_side(image: Image.Image, budget: int | None) -> Image.Image:
    """RGB, long side resized to `budget` pixels (down or up); None keeps full resolution.

    A fixed-resolution reader sees images this way: a page shrinks, a crop is zoomed.
    """
    image = image.convert("RGB") if image.mode != "RGB" else image
    size = budget_size(image.size, budget)
    if size == image.size:
        return image
    # LANCZOS for shrinking (no aliasing), BICUBIC for zooming (what VLM processors use).
    shrink = size[0] < image.width or size[1] < image.height
    return image.resize(size, Image.Resampling.LANCZOS if shrink else Image.Resampling.BICUBIC)


def encode_thumbnail(image: Image.Image, side: int = THUMBNAIL_SIDE) -> bytes:
    """JPEG bytes of `image` shrunk to `side` pixels on its long side (never enlarged)."""
    thumbnail = image.copy()
    thumbnail.thumbnail((side, side))
    buffer = io.BytesIO()
    thumbnail.convert("RGB").save(buffer, format="JPEG", quality=80, optimize=True)
    return buffer.getvalue()
