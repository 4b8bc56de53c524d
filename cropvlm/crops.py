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


def encode_thumbnail(image: Image.Image, side: int = THUMBNAIL_SIDE) -> bytes:
    """JPEG bytes of `image` shrunk to `side` pixels on its long side (never enlarged)."""
    thumbnail = image.copy()
    thumbnail.thumbnail((side, side))
    buffer = io.BytesIO()
    thumbnail.convert("RGB").save(buffer, format="JPEG", quality=80, optimize=True)
    return buffer.getvalue()
