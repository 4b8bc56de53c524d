"""Replay a recorded `Sheet` into a PyMuPDF document, and serialise it reproducibly."""

from __future__ import annotations

import pymupdf

from cropvlm.synthetic.draw import Sheet

# Fixed metadata: PyMuPDF would otherwise stamp the current time and the bytes would differ.
_METADATA = {
    "producer": "cropvlm.synthetic", "creator": "cropvlm.synthetic", "title": "", "author": "",
    "subject": "", "keywords": "", "creationDate": "D:20240101000000Z", "modDate": "D:20240101000000Z",
}


def _winansi(text: str) -> str:
    """PyMuPDF writes base-14 text one byte per character (WinAnsiEncoding) and turns every
    character above U+00FF into "·"; pass € and the other Windows-1252 extras as their bytes."""
    return text.encode("cp1252").decode("latin-1")


def build_document(sheet: Sheet) -> pymupdf.Document:
    doc = pymupdf.open()
    for ops in sheet.pages:
        page = doc.new_page(width=sheet.width, height=sheet.height)
        shape = page.new_shape()  # one content stream per page: much faster than per-op inserts
        for op in ops:
            kind = op[0]
            if kind == "text":
                _, x, baseline, text, font, size, color = op
                shape.insert_text((x, baseline), _winansi(text), fontname=font, fontsize=size, color=color)
            elif kind == "line":
                _, x0, y0, x1, y1, width, color, dashes = op
                shape.draw_line((x0, y0), (x1, y1))
                shape.finish(color=color, width=width, dashes=dashes)
            elif kind == "rect":
                _, rect, fill, color, width = op
                shape.draw_rect(pymupdf.Rect(*rect))
                shape.finish(color=color, fill=fill, width=width if color else 0)
            elif kind == "circle":
                _, cx, cy, radius, fill = op
                shape.draw_circle((cx, cy), radius)
                shape.finish(color=None, fill=fill, width=0)
        shape.commit()
    doc.set_metadata(_METADATA)
    return doc


def pdf_bytes(doc: pymupdf.Document) -> bytes:
    # no_new_id: the trailer /ID would otherwise be random; garbage+deflate keep files small.
    return doc.tobytes(garbage=3, deflate=True, no_new_id=True)
