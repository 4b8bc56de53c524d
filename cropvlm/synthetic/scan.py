"""Render PDF pages to images and make them look scanned, moving gold rects along.

Frames: a `Rect` is in PDF points (top-left origin); rendering scales it by dpi/72 into
pixels; the degradation applies an affine map (rotation ±1.5°, slight shear) about the
page centre onto a canvas grown to hold the rotated page, and the same map moves the
four corners of every gold rect. The gold box is their enclosing box, in percent of the
output image, so it stays correct after degradation.
"""

from __future__ import annotations

import io
import math
import random

import numpy as np
import pymupdf
from PIL import Image, ImageEnhance, ImageFilter

from cropvlm.box import Box
from cropvlm.synthetic.draw import Rect


class Affine:
    """Forward pixel map p' = A (p - c) + c' (input image -> output canvas), y down."""

    def __init__(self, width: int, height: int, degrees: float, shear: float):
        t = math.radians(degrees)
        cos, sin = math.cos(t), math.sin(t)
        # Rotation times a horizontal shear: what a sheet fed askew through a scanner does.
        self.a = (cos, cos * shear - sin, sin, sin * shear + cos)
        self.c = (width / 2, height / 2)
        xs, ys = zip(*(self._apply(x, y, (0.0, 0.0)) for x, y in ((0, 0), (width, 0), (0, height), (width, height))))
        self.size = (math.ceil(max(xs) - min(xs)), math.ceil(max(ys) - min(ys)))
        self.c_out = (self.size[0] / 2, self.size[1] / 2)

    def _apply(self, x: float, y: float, c_out: tuple[float, float]) -> tuple[float, float]:
        a, b, c, d = self.a
        dx, dy = x - self.c[0], y - self.c[1]
        return a * dx + b * dy + c_out[0], c * dx + d * dy + c_out[1]

    def apply(self, x: float, y: float) -> tuple[float, float]:
        return self._apply(x, y, self.c_out)

    def pil_data(self) -> tuple[float, ...]:
        """PIL wants the inverse map: input (x, y) = M (output - c') + c."""
        a, b, c, d = self.a
        det = a * d - b * c
        ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
        ox, oy = self.c_out
        return (ia, ib, self.c[0] - ia * ox - ib * oy, ic, id_, self.c[1] - ic * ox - id_ * oy)


def render(page: pymupdf.Page, dpi: int) -> tuple[Image.Image, float]:
    """Page image and the pixels-per-point scale actually used."""
    pix = page.get_pixmap(dpi=dpi, alpha=False)
    return Image.frombytes("RGB", (pix.width, pix.height), pix.samples), pix.width / page.rect.width


def degrade(img: Image.Image, rng: random.Random) -> tuple[Image.Image, Affine]:
    """Skew, paper tint, blur, brightness/contrast jitter, noise; returns the geometry used."""
    geo = Affine(img.width, img.height, rng.uniform(-1.5, 1.5), rng.uniform(-0.01, 0.01))
    gray = rng.random() < 0.6
    if gray:
        img = img.convert("L")
    fill = 255 if gray else (255, 255, 255)
    img = img.transform(geo.size, Image.Transform.AFFINE, geo.pil_data(), Image.Resampling.BILINEAR, fillcolor=fill)
    blur = rng.uniform(-0.3, 0.8)  # about a third of scans stay sharp
    if blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.9, 1.05))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.8, 1.15))
    pixels = np.asarray(img, dtype=np.float32)
    sigma = np.float32(rng.uniform(0.0, 8.0))  # grey levels; float32 halves the time of float64
    noise = np.random.default_rng(rng.getrandbits(32)).standard_normal(pixels.shape[:2], dtype=np.float32) * sigma
    pixels = pixels + (noise[..., None] if pixels.ndim == 3 else noise)
    # Scanners clip the paper to white (auto-levels); it also keeps png/tiff compressible.
    pixels[pixels > rng.uniform(225, 240)] = 255
    if not gray and rng.random() < 0.5:  # yellowish recycled paper: darken blue a little
        pixels[..., 2] *= rng.uniform(0.9, 0.97)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), geo


def jpeg_roundtrip(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert(img.mode)


def rect_to_box(rect: Rect, scale: float, geo: Affine) -> Box:
    """A gold rect in points to percent of the degraded image: enclosing box of moved corners."""
    x0, y0, x1, y1 = (v * scale for v in rect)
    xs, ys = zip(*(geo.apply(x, y) for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))))
    return Box.from_pixels(min(xs), min(ys), max(xs), max(ys), *geo.size)


def encode(images: list[Image.Image], fmt: str, rng: random.Random) -> bytes:
    """png/jpeg hold one image; tiff holds every page (deflate, no timestamp tags)."""
    buf = io.BytesIO()
    if fmt == "png":
        images[0].save(buf, format="PNG", compress_level=1)  # fast; size is not the point
    elif fmt == "jpeg":
        images[0].save(buf, format="JPEG", quality=rng.randint(55, 90))
    elif fmt == "tiff":
        images[0].save(buf, format="TIFF", save_all=True, append_images=images[1:], compression="tiff_deflate")
    else:
        raise ValueError(f"unknown raster format {fmt!r}")
    return buf.getvalue()
