"""Offline OCR engines behind one interface: image in, text lines in reading order out.

`read(image, crop=...)` takes the pixels it is given: the reader has already applied its
pixel budget, so the engines must not quietly re-enlarge small inputs (RapidOCR's default
detector scales the short side up to 736 px) or the budget would mean nothing.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import subprocess
import threading
from typing import Protocol

from PIL import Image

from cropvlm.errors import ReaderError
from cropvlm.readers.ocr_lines import OcrLine, lines_from_pieces
from cropvlm.readers.spaces import restore_spaces

ENGINES = ("rapidocr", "rapidocr-spaced", "tesseract")


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image.Image, crop: bool = False) -> list[OcrLine]:
        """Lines of `image` top to bottom; `crop` hints a small region (few, sparse lines)."""
        ...

    def read_pieces(self, image: Image.Image, crop: bool = False) -> list[OcrLine]:
        """What `read` merges into lines: the engine's own boxes, in no particular order."""
        ...


def make_engine(name: str) -> OcrEngine:
    if name == "rapidocr":
        return RapidOcrEngine()
    if name == "rapidocr-spaced":
        return RapidOcrEngine(restore_spaces=True)
    if name == "tesseract":
        return TesseractEngine()
    raise ReaderError(f"unknown OCR engine {name!r}; choose one of {list(ENGINES)}")


# --- RapidOCR --------------------------------------------------------------------------

_RAPID_LOCK = threading.Lock()
_RAPID_INSTANCE = None


def _rapidocr():
    """One RapidOCR per process: loading its three ONNX models takes about a second."""
    global _RAPID_INSTANCE
    with _RAPID_LOCK:
        if _RAPID_INSTANCE is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:
                raise ReaderError(
                    "the 'rapidocr' OCR engine needs the rapidocr-onnxruntime package "
                    "(pip install rapidocr-onnxruntime)"
                ) from exc
            # No angle classifier: documents here are upright, and it costs a model pass
            # per line. The huge max_side_len stops the library from shrinking the image
            # before recognition; detection size is set per call below.
            with _without_memory_patterns():
                _RAPID_INSTANCE = RapidOCR(use_cls=False, max_side_len=100_000, print_verbose=False)
        return _RAPID_INSTANCE


@contextlib.contextmanager
def _without_memory_patterns():
    """Build RapidOCR's ONNX sessions with memory-pattern caching off.

    ONNX Runtime caches an allocation plan per input shape; OCR inputs take a new shape
    almost every call (page sizes, line widths), so the cache grows without bound: RSS rose
    from 0.9 to 1.2 GB over a 500-document batch. Off, RSS stays flat for ~4% more time
    (measured: 0.75 vs 0.78 s per receipt page). RapidOCR has no option for it, so the
    session options class is swapped only while its sessions are created.
    """
    import onnxruntime
    from rapidocr_onnxruntime.utils import infer_engine

    class _Options(onnxruntime.SessionOptions):
        def __init__(self) -> None:
            super().__init__()
            self.enable_mem_pattern = False

    original = infer_engine.SessionOptions
    infer_engine.SessionOptions = _Options
    try:
        yield
    finally:
        infer_engine.SessionOptions = original


class RapidOcrEngine:
    """`restore_spaces`: put back the spaces the recogniser drops inside zoomed, tightly set
    lines (`SANYUDESIGNSTUDIO`), from its character positions; see `spaces.restore_spaces`."""

    def __init__(self, det_max_side: int = 2000, det_min_side: int = 0, restore_spaces: bool = False) -> None:
        # Detection at the input size (rounded to 32 px by the library), capped for huge
        # full-resolution scans; `det_min_side` > 0 restores some of the default upscaling.
        self.det_max_side = det_max_side
        self.det_min_side = det_min_side
        self.restore_spaces = restore_spaces
        self.name = "rapidocr-spaced" if restore_spaces else "rapidocr"

    def read(self, image: Image.Image, crop: bool = False) -> list[OcrLine]:
        return lines_from_pieces(self.read_pieces(image, crop))

    def read_pieces(self, image: Image.Image, crop: bool = False) -> list[OcrLine]:
        """Raw text regions as the detector gives them (not merged, not ordered)."""
        engine = _rapidocr()
        width, height = image.size
        if min(width, height) < 8:
            return []
        side = min(max(max(width, height), self.det_min_side), self.det_max_side)
        with _RAPID_LOCK:  # detector settings live on the shared instance
            engine.text_det.limit_type = "max"
            engine.text_det.limit_side_len = side
            if self.det_min_side and min(width, height) < self.det_min_side:
                engine.text_det.limit_type = "min"
                engine.text_det.limit_side_len = min(self.det_min_side, self.det_max_side)
            result, _ = engine(image.convert("RGB"), use_cls=False, return_word_box=self.restore_spaces)
        pieces = []
        for points, text, score, *chars in result or []:
            if chars:  # with return_word_box: one box per character (spaces included)
                text = restore_spaces(str(text), [(box[0][0] + box[1][0]) / 2 for box in chars[0]])
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            pieces.append(OcrLine(str(text), float(score), (min(xs), min(ys), max(xs), max(ys))))
        return pieces


# --- tesseract -------------------------------------------------------------------------


class TesseractEngine:
    name = "tesseract"

    def __init__(self, binary: str | None = None, lang: str = "eng", timeout_s: float = 60.0) -> None:
        self.binary = binary or shutil.which("tesseract")
        if not self.binary:
            raise ReaderError(
                "the 'tesseract' OCR engine needs the tesseract binary on PATH "
                "(Debian/Ubuntu: apt-get install tesseract-ocr)"
            )
        self.lang = lang
        self.timeout_s = timeout_s

    def read(self, image: Image.Image, crop: bool = False) -> list[OcrLine]:
        return lines_from_pieces(self.read_pieces(image, crop))

    def read_pieces(self, image: Image.Image, crop: bool = False) -> list[OcrLine]:
        """Raw word boxes (not merged into lines)."""
        if min(image.size) < 8:
            return []
        if not crop:
            # Automatic layout (psm 3) for a whole page; fall back to sparse text when it
            # finds nothing (a page with a few scattered labels).
            return self._run(image, 3) or self._run(image, 11)
        # Small crops: psm 3 returns nothing for about 1 in 3 of them (OCR-FACTS). A uniform
        # block (psm 6) reads one or several lines; sparse text (psm 11) rescues the rest.
        return self._run(image, 6) or self._run(image, 11)

    def _run(self, image: Image.Image, psm: int) -> list[OcrLine]:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        # One thread: tesseract's OpenMP makes small images slower, and we run one
        # process per core in batch work.
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        try:
            done = subprocess.run(
                [self.binary, "stdin", "stdout", "-l", self.lang, "--psm", str(psm), "tsv"],
                input=buffer.getvalue(), capture_output=True, timeout=self.timeout_s, env=env,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ReaderError(f"tesseract failed to run: {exc}") from exc
        if done.returncode != 0:
            raise ReaderError(f"tesseract exited with {done.returncode}: {done.stderr.decode(errors='replace')[-300:]}")
        return _parse_tsv(done.stdout.decode("utf-8", errors="replace"))


def _parse_tsv(tsv: str) -> list[OcrLine]:
    """Word rows (level 5) of tesseract's TSV as pieces; conf is 0-100, -1 for non-words."""
    words = []
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        text = (row.get("text") or "").strip()
        if row.get("level") != "5" or not text:
            continue
        try:
            conf = float(row["conf"])
            left, top = float(row["left"]), float(row["top"])
            width, height = float(row["width"]), float(row["height"])
        except (KeyError, TypeError, ValueError):
            continue
        words.append(OcrLine(text, max(conf, 0.0) / 100.0, (left, top, left + width, top + height)))
    return words
