"""A second, zoomed read for the answer head: a region of the page read again from full
resolution, its lines in place of the page's lines there, and the candidates of both reads
in one group for the head to choose from.

Why: at a 768-pixel budget a receipt's small print loses letters and word spaces; the head
picks the right line but a wrong spelling of it. A band around the pick, read at the same
budget, is the same lines 2-3x larger: on SROIE dev the candidates' ceiling rose from 0.44
to 0.57 for company and 0.24 to 0.35 for address (reports/answer_head/README.md). Choosing
among both reads lets the head keep the page's reading where the zoom is worse, so a
region the head did not choose (a crop policy's box) can add candidates but never take the
page's away.

Coordinates: everything is in pixels of the page as the reader read it (its budget size);
`Region`s convert to full-resolution pixels to cut the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from cropvlm.answer_head.examples import FieldCandidates, field_candidates
from cropvlm.answer_head.features import Page
from cropvlm.crops import resize_long_side
from cropvlm.readers.ocr_lines import OcrLine, lines_from_pieces
from cropvlm.templates import FieldSpec

MARGIN_LINES = 1.5  # band = the pick's lines plus this many median line heights above and below
ZOOM_TYPES = frozenset({"text"})  # dates and amounts read well at the budget already


@dataclass(frozen=True)
class Region:
    """A box of the page in pixels of the page as read (its budget size)."""

    x1: float
    y1: float
    x2: float
    y2: float

    @classmethod
    def of_full(cls, box: Sequence[float], full_size: tuple[int, int], read_size: tuple[float, float]) -> Region:
        """A box in full-resolution pixels (a crop's place) as a region of the page read."""
        sx, sy = read_size[0] / full_size[0], read_size[1] / full_size[1]
        return cls(box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)

    def grown_to(self, pieces: Sequence[OcrLine]) -> Region:
        """The region grown to every page piece whose centre it holds: a crop's edge that
        runs through a line would cut its first or last letters out of the zoomed read."""
        held = [p.box for p in pieces if self.holds(p)]
        if not held:
            return self
        return Region(min(self.x1, *(b[0] for b in held)), min(self.y1, *(b[1] for b in held)),
                      max(self.x2, *(b[2] for b in held)), max(self.y2, *(b[3] for b in held)))

    def full(self, read_size: tuple[int, int], full_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """The box in pixels of the full-resolution page, clamped to it."""
        sx, sy = full_size[0] / read_size[0], full_size[1] / read_size[1]
        return (max(0, int(self.x1 * sx)), max(0, int(self.y1 * sy)),
                min(full_size[0], int(np.ceil(self.x2 * sx))), min(full_size[1], int(np.ceil(self.y2 * sy))))

    def holds(self, piece: OcrLine) -> bool:
        cx, cy = (piece.box[0] + piece.box[2]) / 2, (piece.box[1] + piece.box[3]) / 2
        return self.x1 <= cx <= self.x2 and self.y1 <= cy <= self.y2

    def key(self) -> tuple[float, ...]:
        return (round(self.x1, 1), round(self.y1, 1), round(self.x2, 1), round(self.y2, 1))


def band_around(page: Page, line_indices: Sequence[int]) -> Region:
    """The page's full width, from MARGIN_LINES above the lines to MARGIN_LINES below."""
    chosen = [page.lines[i] for i in line_indices]
    margin = MARGIN_LINES * page.median_height
    return Region(0.0, max(0.0, min(l.box[1] for l in chosen) - margin),
                  page.size[0], min(page.size[1], max(l.box[3] for l in chosen) + margin))


def placed(pieces: Sequence[OcrLine], read: tuple[int, int], region_full: tuple[int, int, int, int],
           full_size: tuple[int, int], read_size: tuple[int, int]) -> list[OcrLine]:
    """Pieces read from a region image of size `read` (its budget size), moved to page-read
    pixels: the region sits at `region_full` in the full page of `full_size`."""
    width, height = region_full[2] - region_full[0], region_full[3] - region_full[1]
    sx, sy = width / max(read[0], 1), height / max(read[1], 1)  # region-read -> full pixels
    px, py = read_size[0] / full_size[0], read_size[1] / full_size[1]  # full -> page-read pixels
    out = []
    for p in pieces:
        x1, y1, x2, y2 = p.box
        out.append(OcrLine(p.text, p.confidence, ((region_full[0] + x1 * sx) * px, (region_full[1] + y1 * sy) * py,
                                                   (region_full[0] + x2 * sx) * px, (region_full[1] + y2 * sy) * py)))
    return out


def read_region(engine, full_page: Image.Image, read_size: tuple[int, int], region: Region,
                budget: int | None) -> list[OcrLine]:
    """OCR pieces of `region` cut from the full page and read at `budget`, in page-read pixels."""
    box = region.full(read_size, full_page.size)
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:
        return []
    image = resize_long_side(full_page.crop(box), budget)
    return placed(engine.read_pieces(image, crop=True), image.size, box, full_page.size, read_size)


def zoomed_page(page_pieces: Sequence[OcrLine], region_pieces: Sequence[OcrLine], region: Region,
                size: tuple[float, float]) -> Page:
    """The page with the region's zoomed pieces in place of the page's pieces there."""
    outside = [p for p in page_pieces if not region.holds(p)]
    return Page.of(lines_from_pieces(outside + list(region_pieces)), size)


def combined(page_field: FieldCandidates, zoom_field: FieldCandidates) -> FieldCandidates:
    """Both reads' candidates in one group, a last feature column saying which read (0 page,
    1 zoom). Candidates' line indices then refer to their own read's page."""
    parts = [(page_field, 0.0), (zoom_field, 1.0)]
    features = np.concatenate([np.column_stack([f.features, np.full(len(f.candidates), flag, np.float32)])
                               for f, flag in parts]).astype(np.float32)
    return FieldCandidates(page_field.spec, page_field.candidates + zoom_field.candidates, features,
                           page_field.rule_text, page_field.pages + zoom_field.pages)


def zoom_field(page_pieces: Sequence[OcrLine], region_pieces: Sequence[OcrLine], region: Region,
               size: tuple[float, float], page_field: FieldCandidates, spec: FieldSpec) -> FieldCandidates:
    """The page's candidates and those of the page with the region zoomed, combined."""
    return combined(page_field, field_candidates([zoomed_page(page_pieces, region_pieces, region, size)], spec))
