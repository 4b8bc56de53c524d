"""A recorded drawing surface: layouts draw here, `pdf.py` replays it into PyMuPDF.

Recording first (instead of drawing straight into a PDF page) lets a receipt grow to its
content's height and lets a layout add "Page 1 of 2" once the page count is known.
All coordinates are PDF points (1/72 inch) on the page, top-left origin, y down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pymupdf

Rect = tuple[float, float, float, float]  # (x0, y0, x1, y1) in points, page-local
Color = tuple[float, float, float]  # RGB in 0-1
BLACK: Color = (0.0, 0.0, 0.0)
GREY: Color = (0.4, 0.4, 0.4)
WHITE: Color = (1.0, 1.0, 1.0)

# Base-14 families: (regular, bold) PyMuPDF font names.
FAMILIES = {"helv": ("helv", "hebo"), "times": ("tiro", "tibo"), "cour": ("cour", "cobo")}
_FONTS = {n: pymupdf.Font(n) for f in FAMILIES.values() for n in f}
_METRICS = {n: (font.ascender, font.descender) for n, font in _FONTS.items()}


def font_name(family: str, bold: bool = False) -> str:
    return FAMILIES[family][1 if bold else 0]


def text_width(text: str, font: str, size: float) -> float:
    # Font.text_length, not pymupdf.get_text_length: the latter counts non-ASCII (ü, ß, £) too narrow.
    return _FONTS[font].text_length(text, fontsize=size)


def line_height(font: str, size: float) -> float:
    """Height of MuPDF's glyph boxes for this font: what text extraction reports."""
    ascender, descender = _METRICS[font]
    return (ascender - descender) * size


def union(*rects: Rect) -> Rect:
    return (min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects))


@dataclass
class Mark:
    """One gold field: the printed answer and the rectangle of just its text."""

    field: str
    answer: str
    page: int  # 0-based index into Sheet.pages
    rect: Rect


@dataclass
class Sheet:
    width: float  # points
    height: float  # points; receipts set it after layout, from their content
    pages: list[list[tuple]] = field(default_factory=lambda: [[]])
    marks: list[Mark] = field(default_factory=list)

    @property
    def page(self) -> int:
        return len(self.pages) - 1

    def new_page(self) -> None:
        self.pages.append([])

    def text(self, x: float, top: float, text: str, font: str, size: float,
             align: str = "left", color: Color = BLACK, page: int = -1) -> Rect:
        """Draw one line; `x` is the left edge, centre or right edge by `align`; returns its rect.

        `page` picks an earlier page (e.g. "Page 1 of 2" footers added after layout).
        """
        width = text_width(text, font, size)
        x0 = {"left": x, "center": x - width / 2, "right": x - width}[align]
        ascender, _ = _METRICS[font]
        self.pages[page].append(("text", x0, top + ascender * size, text, font, size, color))
        return (x0, top, x0 + width, top + line_height(font, size))

    def line(self, x0: float, y0: float, x1: float, y1: float, width: float = 0.5,
             color: Color = BLACK, dashes: str | None = None, page: int = -1) -> None:
        self.pages[page].append(("line", x0, y0, x1, y1, width, color, dashes))

    def rect(self, r: Rect, fill: Color | None = None, color: Color | None = None, width: float = 0.5) -> None:
        self.pages[-1].append(("rect", r, fill, color, width))

    def circle(self, cx: float, cy: float, radius: float, fill: Color) -> None:
        self.pages[-1].append(("circle", cx, cy, radius, fill))

    def mark(self, field_name: str, answer: str, rect: Rect, page: int | None = None) -> None:
        """`page`: 0-based, for a value drawn on an earlier page (footers); default the current one."""
        self.marks.append(Mark(field_name, answer, self.page if page is None else page, rect))


def sub_rect(rect: Rect, text: str, start: int, end: int, font: str, size: float) -> Rect:
    """Rect of `text[start:end]` inside the drawn line `rect` (e.g. the number after "RM ")."""
    x0 = rect[0] + text_width(text[:start], font, size)
    return (x0, rect[1], x0 + text_width(text[start:end], font, size), rect[3])


class Flow:
    """A text cursor down a column: lines, label/value pairs, rules, page breaks."""

    def __init__(self, sheet: Sheet, left: float, right: float, top: float, family: str,
                 size: float, leading: float = 1.3, bottom: float | None = None):
        self.sheet, self.left, self.right, self.top = sheet, left, right, top
        self.family, self.size, self.leading = family, size, leading
        self.bottom = bottom  # None: the page grows (receipts)
        self.y = top
        self.page_top = top  # where the cursor restarts after a page break
        self.on_new_page = None  # callback(flow) to redraw a table header after a break

    def fit(self, text: str, bold: bool = False, size: float | None = None) -> float:
        """Largest size <= `size` at which `text` fits the column (long shop names shrink)."""
        size = size or self.size
        width = text_width(text, font_name(self.family, bold), size)
        return size if width <= self.right - self.left else size * (self.right - self.left) / width * 0.98

    def ensure(self, height: float) -> None:
        if self.bottom is not None and self.y + height > self.bottom:
            self.sheet.new_page()
            self.y = self.page_top
            if self.on_new_page:
                self.on_new_page(self)

    def text(self, text: str, align: str = "left", bold: bool = False, size: float | None = None,
             family: str | None = None, x: float | None = None, advance: bool = True,
             color: Color = BLACK) -> Rect:
        font = font_name(family or self.family, bold)
        size = size or self.size
        self.ensure(size * self.leading)
        if x is None:
            x = {"left": self.left, "center": (self.left + self.right) / 2, "right": self.right}[align]
        rect = self.sheet.text(x, self.y, text, font, size, align, color)
        if advance:
            self.y += size * self.leading
        return rect

    def pair(self, label: str, value: str, bold: bool = False, size: float | None = None,
             label_x: float | None = None, label_align: str = "left") -> tuple[Rect, Rect]:
        """Label then value on one line, value right-aligned at the column's right edge."""
        lab = self.text(label, label_align, bold, size, x=label_x if label_x is not None else self.left,
                        advance=False)
        val = self.text(value, "right", bold, size)
        return lab, val

    def gap(self, points: float) -> None:
        self.y += points

    def rule(self, style: str = "line", width: float = 0.6) -> None:
        """Horizontal rule: a stroke, a dashed stroke, or a row of '-' like a thermal printer."""
        self.ensure(self.size)
        mid = self.y + self.size * 0.45
        if style == "chars":
            font = font_name(self.family)
            n = int((self.right - self.left) / text_width("-", font, self.size))
            self.sheet.text(self.left, self.y, "-" * n, font, self.size)
        else:
            self.sheet.line(self.left, mid, self.right, mid, width, BLACK, "[2 2] 0" if style == "dash" else None)
        self.y += self.size * self.leading
