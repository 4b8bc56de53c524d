"""OCR of whole pages, kept on disk: training and measuring the answer head read each
page many times, and RapidOCR takes seconds per page.

A cache file holds one document's pages as raw engine pieces (text, confidence, box in
pixels of the image read) plus the size of that image, keyed by the document's content
hash, the engine and the pixel budget, so a changed file or setting is read anew.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cropvlm.crops import budget_size, resize_long_side
from cropvlm.readers.ocr_engines import make_engine
from cropvlm.readers.ocr_lines import OcrLine
from cropvlm.render import RenderConfig, render_document


@dataclass(frozen=True)
class PageOcr:
    size: tuple[int, int]  # (width, height) of the image the engine read, pixels
    pieces: tuple[OcrLine, ...]  # as the engine gave them: not merged, not ordered


def cache_key(data: bytes, engine: str, budget: int | None, dpi: int) -> str:
    digest = hashlib.sha256(data).hexdigest()[:32]
    return f"{digest}-{engine}-{budget or 'full'}-{dpi}"


def read_document(path: str | Path, engine: str = "rapidocr-spaced", budget: int | None = 768,
                  cache: str | Path | None = None, render: RenderConfig = RenderConfig()) -> list[PageOcr]:
    """Every page of the document at `path` read whole at `budget` (long side, pixels)."""
    return read_bytes(Path(path).read_bytes(), engine, budget, cache, render)


def read_bytes(data: bytes, engine: str = "rapidocr-spaced", budget: int | None = 768,
               cache: str | Path | None = None, render: RenderConfig = RenderConfig()) -> list[PageOcr]:
    """`read_document` of a document's bytes."""
    return DocumentReads(data, engine, budget, cache, render).pages()


class DocumentReads:
    """One document's OCR through the cache: its whole pages, and regions of them read again
    zoomed (`zoom.read_region`). The document is hashed once and rendered at most once, the
    first time something is not in the cache."""

    def __init__(self, data: bytes, engine: str = "rapidocr-spaced", budget: int | None = 768,
                 cache: str | Path | None = None, render: RenderConfig = RenderConfig()) -> None:
        self.data, self.engine, self.budget, self.render = data, engine, budget, render
        self.stem = Path(cache) / cache_key(data, engine, budget, render.dpi) if cache else None
        self._images = None

    def images(self) -> list:
        if self._images is None:
            self._images = render_document(self.data, self.render).pages
        return self._images

    def pages(self) -> list[PageOcr]:
        """Every page read whole at the budget."""
        target = self.stem.with_name(self.stem.name + ".json") if self.stem else None
        if target is not None and target.exists():
            return _load(target)
        reader = make_engine(self.engine)
        pages = []
        for image in self.images():
            scaled = resize_long_side(image, self.budget)
            pages.append(PageOcr(scaled.size, tuple(reader.read_pieces(scaled))))
        if target is not None:
            save_pages(target, pages)
        return pages

    def region(self, page: int, region) -> list[OcrLine]:
        """Pieces of a `zoom.Region` of page `page`, read zoomed, in pixels of the page read."""
        from cropvlm.answer_head.zoom import read_region

        target = None
        if self.stem is not None:
            where = "-".join(f"{v:g}" for v in region.key())
            target = self.stem.with_name(f"{self.stem.name}-p{page}-zoom-{where}.json")
            if target.exists():
                return list(_load(target)[0].pieces)
        image = self.images()[page]
        read_size = budget_size(image.size, self.budget)
        pieces = read_region(make_engine(self.engine), image, read_size, region, self.budget)
        if target is not None:
            save_pages(target, [PageOcr(read_size, tuple(pieces))])
        return pieces


def cache_path(cache: str | Path, data: bytes, engine: str = "rapidocr-spaced", budget: int | None = 768,
               render: RenderConfig = RenderConfig()) -> Path:
    return Path(cache) / f"{cache_key(data, engine, budget, render.dpi)}.json"


def save_pages(target: Path, pages: list[PageOcr]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps([_dump(page) for page in pages]), encoding="utf-8")
    tmp.replace(target)  # whole or absent: a killed run leaves no half-written file


def _dump(page: PageOcr) -> dict:
    return {"size": list(page.size),
            "pieces": [[p.text, round(p.confidence, 4), [round(v, 1) for v in p.box]] for p in page.pieces]}


def _load(path: Path) -> list[PageOcr]:
    return [PageOcr(tuple(page["size"]), tuple(OcrLine(text, conf, tuple(box)) for text, conf, box in page["pieces"]))
            for page in json.loads(path.read_text(encoding="utf-8"))]
