"""Turn document bytes into RGB page images: PDFs with PyMuPDF, images with Pillow.

The media type comes from the bytes, not the file name, so a PNG saved as `.pdf` still
renders and a text file named `.jpg` fails with a message that says what it is.
Limits protect the worker: pages per document, pixels per page (decompression bombs) and
pixels per document, checked before a page is decoded.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pymupdf
from PIL import Image, ImageOps, ImageSequence

from cropvlm.errors import DocumentError, UnsupportedMediaError

PDF, PNG, JPEG, TIFF = "application/pdf", "image/png", "image/jpeg", "image/tiff"
pymupdf.TOOLS.mupdf_display_errors(False)  # errors reach the caller as DocumentError instead

_MAGIC = (
    (b"%PDF-", PDF),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
)


@dataclass(frozen=True)
class RenderConfig:
    dpi: int = 150  # PDF rendering resolution, dots per inch
    max_pages: int = 50  # a longer document fails instead of tying up a worker
    max_pixels: int = 40_000_000  # per page; larger PDF pages render at a lower dpi
    max_document_pixels: int = 150_000_000  # all pages together (600 MB in PIL, 4 bytes a pixel); more fails

    def __post_init__(self) -> None:
        if not 36 <= self.dpi <= 600:
            raise ValueError(f"dpi must be in [36, 600], got {self.dpi}")
        if self.max_pages < 1 or self.max_pixels < 10_000:
            raise ValueError("max_pages must be >= 1 and max_pixels >= 10000")
        if self.max_document_pixels < self.max_pixels:
            raise ValueError("max_document_pixels must be >= max_pixels (one page must fit)")


@dataclass(frozen=True)
class RenderedDocument:
    media_type: str
    pages: list[Image.Image]  # RGB, page order


def sniff_media_type(data: bytes) -> str:
    """Media type from the first bytes; UnsupportedMediaError names what it is not."""
    if not data:
        raise DocumentError("empty file (0 bytes)")
    # PDFs may carry junk before the header (allowed within the first 1024 bytes).
    if b"%PDF-" in data[:1024]:
        return PDF
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    raise UnsupportedMediaError(
        f"unsupported file type (starts with {data[:8]!r}); supported: PDF, PNG, JPEG, TIFF"
    )


def render_document(data: bytes, config: RenderConfig = RenderConfig()) -> RenderedDocument:
    return RenderedDocument(sniff_media_type(data), list(render_pages(data, config)))


def render_pages(data: bytes, config: RenderConfig = RenderConfig()) -> Iterator[Image.Image]:
    """The pages one at a time, after every limit was checked (DocumentError before any page)."""
    media_type = sniff_media_type(data)
    if media_type == PDF:
        return _render_pdf(data, config)
    return iter(_load_image(data, media_type, config))


def _render_pdf(data: bytes, config: RenderConfig) -> Iterator[Image.Image]:
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
        count = doc.page_count  # a broken page tree (a cycle) raises only here
    except _PDF_ERRORS as exc:
        raise DocumentError(f"corrupt PDF: {exc}") from exc
    try:
        if doc.needs_pass:
            raise DocumentError("encrypted PDF: it needs a password")
        if count == 0:
            raise DocumentError("PDF has no pages")
        _check_page_count(count, config)
        try:
            dpis = [_page_dpi(doc[index], config) for index in range(count)]
        except _PDF_ERRORS as exc:
            raise DocumentError(f"corrupt PDF: a page does not load: {exc}") from exc
        _check_document_pixels(sum(pixels for _, pixels in dpis), count, config)
    except BaseException:
        doc.close()
        raise
    return _render_pdf_pages(doc, dpis)


def _render_pdf_pages(doc: pymupdf.Document, dpis: list[tuple[int, int]]) -> Iterator[Image.Image]:
    with doc:
        for index, (dpi, _) in enumerate(dpis):
            try:
                pixmap = doc[index].get_pixmap(dpi=dpi, alpha=False, colorspace=pymupdf.csRGB)
            except _PDF_ERRORS as exc:
                raise DocumentError(f"corrupt PDF: page {index + 1} does not render: {exc}") from exc
            # samples_mv: no intermediate bytes copy; the pixmap is freed as soon as it is copied
            yield Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples_mv)


# MuPDF's own errors (FzErrorFormat: "cycle in page tree") are not RuntimeErrors.
_PDF_ERRORS = (pymupdf.FileDataError, pymupdf.mupdf.FzErrorBase, RuntimeError, ValueError)


def _page_dpi(page: pymupdf.Page, config: RenderConfig) -> tuple[int, int]:
    """(dpi, pixels) the page renders at: the configured dpi, lower for a page over max_pixels."""
    width_in, height_in = page.rect.width / 72, page.rect.height / 72  # points to inches
    if width_in <= 0 or height_in <= 0:
        raise DocumentError(f"page {page.number + 1} has an empty size")
    dpi = float(config.dpi)
    if width_in * height_in * dpi * dpi > config.max_pixels:
        dpi = (config.max_pixels / (width_in * height_in)) ** 0.5  # huge page: shrink, keep it
    dpi = max(int(dpi), 1)
    return dpi, round(width_in * dpi) * round(height_in * dpi)


def _load_image(data: bytes, media_type: str, config: RenderConfig) -> list[Image.Image]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            frames = getattr(image, "n_frames", 1)
            _check_page_count(frames, config)
            pages, pixels = [], 0
            for frame in ImageSequence.Iterator(image):
                width, height = frame.size
                if width * height > config.max_pixels:
                    raise DocumentError(
                        f"image page of {width}x{height} = {width * height / 1e6:.0f} MP is over "
                        f"the limit of {config.max_pixels / 1e6:.0f} MP per page"
                    )
                pixels += width * height
                _check_document_pixels(pixels, frames, config)  # before this frame is decoded
                frame.load()
                pages.append(_to_rgb(ImageOps.exif_transpose(frame)))
            return pages
    except DocumentError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DocumentError(f"image refused as a decompression bomb: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        kind = media_type.split("/")[1].upper()
        raise DocumentError(f"corrupt or truncated {kind} image: {exc}") from exc


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        background = Image.new("RGB", image.size, "white")  # transparent scans read as paper
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    if image.mode.startswith("I;16") or image.mode == "I":
        image = image.point(lambda v: v / 256).convert("L")  # 16-bit grey to 8-bit
    return image.convert("RGB")


def _check_page_count(count: int, config: RenderConfig) -> None:
    if count > config.max_pages:
        raise DocumentError(f"document has {count} pages, over the limit of {config.max_pages}")


def _check_document_pixels(pixels: int, pages: int, config: RenderConfig) -> None:
    if pixels > config.max_document_pixels:
        raise DocumentError(
            f"document of {pages} pages renders to over {pixels / 1e6:.0f} MP, over the limit of "
            f"{config.max_document_pixels / 1e6:.0f} MP per document: lower dpi or raise max_document_pixels"
        )
