"""Sample sources for flow tests: good synthetic documents and every kind of bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pymupdf
from PIL import Image

from cropvlm.synthetic import generate_document

ZERO_PAGE_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def good_documents(kind: str = "receipt") -> dict[str, bytes]:
    docs = {}
    for seed, fmt in ((1, "pdf"), (2, "png")):
        doc = generate_document(kind, seed, fmt)
        docs[f"{doc.name}{doc.suffix}"] = doc.data
    png = generate_document(kind, 3, "png")
    docs["scan-named-as.pdf"] = png.data  # wrong extension: rendered by its bytes
    return docs


def bad_documents() -> dict[str, bytes]:
    pdf = generate_document("invoice", 9, "pdf").data
    encrypted = pymupdf.open(stream=pdf, filetype="pdf").tobytes(
        encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner"
    )
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000), 1).save(bomb, format="PNG")
    return {
        "bad/corrupt.pdf": b"%PDF-1.7\nthis is not really a pdf\n",
        "bad/truncated.pdf": pdf[:200],
        "bad/encrypted.pdf": encrypted,
        "bad/empty.pdf": b"",
        "bad/zero-pages.pdf": ZERO_PAGE_PDF,
        "bad/notes.txt": b"just some notes, not a document",
        "bad/bomb.png": bomb.getvalue(),
    }


def blank_documents() -> dict[str, bytes]:
    """Documents that render but carry no text: extracted as `empty`, not as failures."""
    white = io.BytesIO()
    Image.new("RGB", (600, 800), "white").save(white, format="PNG")
    blank = pymupdf.open()
    blank.new_page()
    return {
        "blank.png": white.getvalue(),
        "blank.pdf": blank.tobytes(),
        "cut.pdf": generate_document("invoice", 11, "pdf").data[:600],  # cut short: 2 white pages
    }


def write_folder(folder: Path, docs: dict[str, bytes]) -> Path:
    for name, data in docs.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder
