"""`OcrReader`: an offline reader that behaves like a fixed-resolution VLM encoder.

Every image (page or crop) is resized so its long side equals the pixel budget before OCR:
a whole page is shrunk (small print is lost), a crop is zoomed (small print comes back).
That is the effect a crop policy exploits in a VLM, reproduced with OCR on a CPU.

Crop and page, as a VLM gets both images: the crop is read first; when it yields no answer
of the field's type, a weak one, or free text (whose words a zoom can glue or a crop edge
can cut), the page is read too - once per page per call, shared by every field of that
page - and `reconcile` picks between the two answers.

With an answer head (`cropvlm.answer_head`), the head answers instead of the rules: every
candidate of the page's lines is scored by a learned model, and the answer's confidence is
the calibrated probability that it is right. For the types the head zooms (free text), a
region is read again from the full-resolution page - the request's crop, grown to the whole
lines it holds, when a policy gave one, else a band around the head's pick on the page -
and the head chooses among the candidates of both reads (`cropvlm.answer_head.zoom`). For
other types a head answers from the page and a crop is not read. A free-text answer the head
chose has the words OCR glued cut apart by word frequencies (`readers.words`:
`KUALALUMPUR` -> `KUALA LUMPUR`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from PIL import Image

from cropvlm.answer_head import zoom
from cropvlm.answer_head.examples import field_candidates
from cropvlm.answer_head.features import Page
from cropvlm.answer_head.model import AnswerHead
from cropvlm.crops import budget_size, resize_long_side
from cropvlm.normalize import normalize_value
from cropvlm.readers.answer_rules import STRONG, Candidate, extract
from cropvlm.readers.base import Answer, ReadRequest
from cropvlm.readers.ocr_engines import ENGINES, OcrEngine, make_engine
from cropvlm.readers.ocr_lines import OcrLine, lines_from_pieces
from cropvlm.readers.reconcile import reconcile
from cropvlm.errors import ReaderError


def apply_budget(image: Image.Image, budget: int | None) -> Image.Image:
    """Resize so the long side is `budget` pixels (down or up); None keeps full resolution."""
    return resize_long_side(image, budget)


class OcrReader:
    """Reader protocol over RapidOCR or tesseract; see the module docstring."""

    def __init__(
        self,
        engine: str = "rapidocr",
        budget: int | None = 768,
        engine_factory: Callable[[str], OcrEngine] = make_engine,
        head: AnswerHead | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ReaderError(f"unknown OCR engine {engine!r}; choose one of {list(ENGINES)}")
        if budget is not None and (not isinstance(budget, int) or budget < 32):
            raise ReaderError(f"pixel budget must be an integer >= 32 or None, got {budget!r}")
        self.engine_name = engine
        self.budget = budget
        self.version = f"ocr:{engine}@{budget if budget is not None else 'full'}"
        self.head = head
        if head is not None:  # the head's answers to free text go through `words.split_glued`
            self.version += f"+{head.version}+words"
        self._factory = engine_factory
        self._engine: OcrEngine | None = None  # created on first use: models load slowly

    @property
    def engine(self) -> OcrEngine:
        if self._engine is None:
            self._engine = self._factory(self.engine_name)
        return self._engine

    def answer(self, requests: Sequence[ReadRequest]) -> list[Answer]:
        # Caches live for one call: pages by identity (requests of a page share the object,
        # and the list keeps them alive so ids are not reused), crops by content.
        page_lines: dict[int, list[OcrLine]] = {}
        crop_lines: dict[tuple, list[OcrLine]] = {}

        def read_page(page: Image.Image) -> list[OcrLine]:
            if id(page) not in page_lines:
                page_lines[id(page)] = self._read(page, crop=False)
            return page_lines[id(page)]

        def read_crop(crop: Image.Image) -> list[OcrLine]:
            key = _content_key(crop)
            if key not in crop_lines:
                crop_lines[key] = self._read(crop, crop=True)
            return crop_lines[key]

        answers = []
        head = _HeadReads(self) if self.head is not None else None
        for request in requests:
            spec = request.spec
            if head is not None:
                answers.append(head.answer(request))
                continue
            if request.crop is None:
                best, source = extract(read_page(request.page), spec, "page"), "page"
            else:
                frame = budget_size(request.crop.size, self.budget)
                lines = read_crop(request.crop)
                best, source = extract(lines, spec, "crop", frame), "crop"
                if best.strength < STRONG or spec.type == "text":
                    on_page = read_page(request.page)
                    best, source = reconcile(best, extract(on_page, spec, "page"), lines, on_page, spec.type, frame)
            answers.append(_to_answer(best, source))
        return answers

    def _read(self, image: Image.Image, crop: bool) -> list[OcrLine]:
        if image.width < 2 or image.height < 2:
            return []
        return self.engine.read(apply_budget(image, self.budget), crop=crop)


class _HeadReads:
    """One `answer` call's reads for the head: each page's pieces once, each region once."""

    def __init__(self, reader: OcrReader) -> None:
        self.reader, self.head = reader, reader.head
        self.pages: dict[int, tuple[list[OcrLine], Page]] = {}  # by id(page): pieces, lines
        self.regions: dict[tuple, list[OcrLine]] = {}

    def page(self, image: Image.Image) -> tuple[list[OcrLine], Page]:
        if id(image) not in self.pages:
            size = budget_size(image.size, self.reader.budget)
            pieces = [] if min(image.size) < 2 else self.reader.engine.read_pieces(apply_budget(image, self.reader.budget))
            self.pages[id(image)] = (pieces, Page.of(lines_from_pieces(pieces), size))
        return self.pages[id(image)]

    def region(self, image: Image.Image, region: zoom.Region) -> list[OcrLine]:
        key = (id(image), region.key())
        if key not in self.regions:
            self.regions[key] = zoom.read_region(self.reader.engine, image, budget_size(image.size, self.reader.budget),
                                                 region, self.reader.budget)
        return self.regions[key]

    def answer(self, request: ReadRequest) -> Answer:
        pieces, page = self.page(request.page)
        spec = request.spec
        field = field_candidates([page], spec)
        pick = self.head.pick(field)
        if pick.index < 0 or not self.head.zooms(spec.type):
            return _chosen(field, pick, "page")
        if request.crop is not None and request.crop_box is not None:
            region = zoom.Region.of_full(request.crop_box, request.page.size, page.size).grown_to(pieces)
            source = "crop"
        else:
            region, source = zoom.band_around(page, field.candidates[pick.index].lines), "zoom"
        group = zoom.zoom_field(pieces, self.region(request.page, region), region, page.size, field, spec)
        best = self.head.pick_zoomed(group)
        return _chosen(group, best, source if best.index >= len(field.candidates) else "page")


def _chosen(field, pick, source: str) -> Answer:
    if pick.index < 0:
        return Answer("", None, 0.0, source)
    chosen = field.candidates[pick.index]
    if field.spec.type == "text":  # glued words cut (`FieldCandidates.answer`), as the head learned
        text = field.answer(pick.index)
        return Answer(text, normalize_value(text, "text"), round(pick.confidence, 4), source)
    return Answer(chosen.text, chosen.value, round(pick.confidence, 4), source)


def _content_key(image: Image.Image) -> tuple:
    digest = hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest()
    return (image.mode, image.size, digest)


def _to_answer(candidate: Candidate, source: str) -> Answer:
    if not candidate.text:
        return Answer("", None, 0.0, source)
    return Answer(candidate.text, candidate.value, candidate.confidence, source)
