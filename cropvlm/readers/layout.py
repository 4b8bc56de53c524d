"""Geometry of OCR segments: which segment is beside or below which.

The engines return column segments (`ocr_lines.segment_lines`); a label and its value are
often separate segments: the value to the right on the same row ("Invoice No.   003752")
or on the next line under the label ("TOTAL DUE" / "1,234.50"). These helpers find them
by box geometry only, so they work the same on a page and inside a crop.
"""

from __future__ import annotations

from collections.abc import Sequence

from cropvlm.readers.ocr_lines import OcrLine, y_overlap

SAME_ROW = 0.5  # vertical overlap (of the smaller height) that puts two segments on one row
BELOW_GAP = 1.6  # a value under its label starts within this many label heights


def x_overlap(a: OcrLine, b: OcrLine) -> float:
    """Horizontal overlap in pixels (negative: the gap between them)."""
    return min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])


def width(line: OcrLine) -> float:
    return line.box[2] - line.box[0]


def same_row(a: OcrLine, b: OcrLine) -> bool:
    return y_overlap(a, b) >= SAME_ROW


def to_the_right(lines: Sequence[OcrLine], i: int) -> list[int]:
    """Segments on the row of `lines[i]` that start right of it, nearest first."""
    anchor = lines[i]
    slack = 0.5 * anchor.height
    out = [j for j, line in enumerate(lines)
           if j != i and same_row(anchor, line) and line.box[0] >= anchor.box[2] - slack]
    return sorted(out, key=lambda j: lines[j].box[0])


def below(lines: Sequence[OcrLine], i: int, max_gap: float = BELOW_GAP) -> int | None:
    """The segment right under `lines[i]` (overlapping it horizontally, next line), or None."""
    anchor = lines[i]
    best, best_top = None, None
    for j, line in enumerate(lines):
        if j == i or line.box[1] < anchor.center_y or same_row(anchor, line):
            continue
        if x_overlap(anchor, line) <= 0:
            continue
        gap = line.box[1] - anchor.box[3]
        if gap > max_gap * max(anchor.height, 1.0):
            continue
        if best_top is None or line.box[1] < best_top:
            best, best_top = j, line.box[1]
    return best


def above(lines: Sequence[OcrLine], i: int, max_gap: float = BELOW_GAP) -> int | None:
    """The segment right over `lines[i]` (overlapping it horizontally, previous line), or None."""
    anchor = lines[i]
    best, best_bottom = None, None
    for j, line in enumerate(lines):
        if j == i or line.box[3] > anchor.center_y or same_row(anchor, line):
            continue
        if x_overlap(anchor, line) <= 0:
            continue
        if anchor.box[1] - line.box[3] > max_gap * max(anchor.height, 1.0):
            continue
        if best_bottom is None or line.box[3] > best_bottom:
            best, best_bottom = j, line.box[3]
    return best


def rows_of(lines: Sequence[OcrLine]) -> list[list[int]]:
    """Indices of `lines` grouped into visual rows (top to bottom, each left to right)."""
    rows: list[list[int]] = []
    for j in sorted(range(len(lines)), key=lambda k: (lines[k].center_y, lines[k].box[0])):
        for row in rows:
            if any(same_row(lines[k], lines[j]) for k in row) and \
                    all(x_overlap(lines[k], lines[j]) <= 0 for k in row):
                row.append(j)
                break
        else:
            rows.append([j])
    return [sorted(row, key=lambda k: lines[k].box[0]) for row in rows]
