"""Text lines from OCR word boxes, in reading order, split into column segments.

Both engines give pieces of lines: RapidOCR gives text regions (out of order on wide
crops), tesseract gives words grouped into blocks that split a receipt row such as
"TOTAL ........ 60.30" into two columns. We cluster pieces into visual rows by vertical
overlap (`merge_into_lines`), then cut each row where the horizontal gap between pieces is
large for the text height (`split_row`): a two-column header then gives "54 Market St."
and "003752" as separate segments instead of one glued line. The answer rules relate
segments by layout (same row to the right, the line below), see `answer_rules`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class OcrLine:
    text: str
    confidence: float  # 0-1
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the image read

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def center_y(self) -> float:
        return (self.box[1] + self.box[3]) / 2


# A gap wider than this many text heights between two pieces of a row starts a new
# segment. A word space is ~0.3 of the box height and a double space under 1; columns,
# tab stops and right-aligned values sit several heights apart.
SEGMENT_GAP = 1.5


def merge_into_lines(pieces: Iterable[OcrLine], overlap: float = 0.5) -> list[OcrLine]:
    """Cluster pieces into rows (vertical overlap >= `overlap` of the smaller height).

    Pieces are visited top to bottom; a piece joins the row whose last piece overlaps it
    most, so a slightly skewed row still chains together, and a piece never joins a row
    it overlaps horizontally (that is the row above or below, not the same row).
    """
    return [_join(row) for row in _rows(pieces, overlap)]


def split_row(row: list[OcrLine], gap: float = SEGMENT_GAP) -> list[list[OcrLine]]:
    """Pieces of one row (left to right) cut where the gap exceeds `gap` text heights."""
    segments: list[list[OcrLine]] = []
    for piece in row:
        if segments:
            last = segments[-1][-1]
            height = max(_height_of(segments[-1]), piece.height, 1.0)
            if piece.box[0] - last.box[2] <= gap * height:
                segments[-1].append(piece)
                continue
        segments.append([piece])
    return segments


def segment_lines(pieces: Iterable[OcrLine], overlap: float = 0.5, gap: float = SEGMENT_GAP) -> list[OcrLine]:
    """Rows split into column segments, in reading order (row by row, left to right)."""
    return [_join(segment) for row in _rows(pieces, overlap) for segment in split_row(row, gap)]


def _height_of(segment: list[OcrLine]) -> float:
    heights = sorted(p.height for p in segment)
    return heights[len(heights) // 2]


def _rows(pieces: Iterable[OcrLine], overlap: float) -> list[list[OcrLine]]:
    """Rows of pieces, each sorted left to right, rows top to bottom."""
    rows: list[list[OcrLine]] = []
    for piece in sorted((p for p in pieces if p.text.strip()), key=lambda p: (p.center_y, p.box[0])):
        best, best_overlap = None, 0.0
        for row in rows:
            ref = max(row, key=lambda p: p.box[2])  # right-most piece: nearest to the new one
            ratio = y_overlap(ref, piece)
            if ratio >= overlap and ratio > best_overlap and not _x_clash(row, piece):
                best, best_overlap = row, ratio
        if best is None:
            rows.append([piece])
        else:
            best.append(piece)
    rows = [sorted(row, key=lambda p: p.box[0]) for row in rows]
    return sorted(rows, key=lambda row: ((min(p.box[1] for p in row) + max(p.box[3] for p in row)) / 2,
                                         row[0].box[0]))


def y_overlap(a: OcrLine, b: OcrLine) -> float:
    """Vertical overlap as a fraction of the smaller height."""
    inter = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    smaller = min(a.height, b.height)
    return inter / smaller if smaller > 0 else 0.0


def _x_clash(row: list[OcrLine], piece: OcrLine) -> bool:
    for other in row:
        inter = min(other.box[2], piece.box[2]) - max(other.box[0], piece.box[0])
        if inter > 0.3 * min(other.box[2] - other.box[0], piece.box[2] - piece.box[0]):
            return True
    return False


def _join(row: list[OcrLine]) -> OcrLine:
    text = " ".join(p.text.strip() for p in row)
    weights = [max(len(p.text.strip()), 1) for p in row]
    confidence = sum(w * p.confidence for w, p in zip(weights, row)) / sum(weights)
    box = (
        min(p.box[0] for p in row),
        min(p.box[1] for p in row),
        max(p.box[2] for p in row),
        max(p.box[3] for p in row),
    )
    return OcrLine(text, confidence, box)


def lines_from_pieces(pieces: Iterable[OcrLine]) -> list[OcrLine]:
    """What the engines return: the lines the answer rules work on, in reading order."""
    return segment_lines(pieces)
