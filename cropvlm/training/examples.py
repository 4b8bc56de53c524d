"""Training examples: (page, question, gold answer, optional gold box), from labels.

Examples come from a labels folder (`labels.jsonl` in the format of data/sroie_dev, as
the synthetic generator writes it) or from the `labels` table (the retrain flow passes
`Label`s built from it). Full-resolution pages are rendered lazily and kept in a small LRU
cache (the reader crops from them); the policy sees a small greyscale view of each page,
made once, resized exactly as the heatmap policy letterboxes a page, so what it trains on
is what it will see. A document that cannot be read or rendered is skipped and reported.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image

from cropvlm.box import Box
from cropvlm.errors import CropVLMError, TrainingError
from cropvlm.labels import Label
from cropvlm.render import RenderConfig, render_document
from cropvlm.templates import FieldSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    doc: str
    page_number: int  # 1-based
    spec: FieldSpec  # question, answer type, aliases
    answer: str  # gold answer as printed
    gold_box: Box | None = None  # gold value box (synthetic documents); SFT needs it, GRPO does not


@dataclass
class ExampleSet:
    examples: list[Example]
    views: dict[tuple[str, int], Image.Image]  # (doc, page) -> the policy's small greyscale view
    pages: PageCache
    skipped: dict[str, str] = field(default_factory=dict)  # doc -> why it was left out

    def view(self, example: Example) -> Image.Image:
        return self.views[(example.doc, example.page_number)]

    def with_boxes(self) -> list[Example]:
        return [e for e in self.examples if e.gold_box is not None]

    def subset(self, docs: set[str]) -> ExampleSet:
        return ExampleSet([e for e in self.examples if e.doc in docs],
                          {k: v for k, v in self.views.items() if k[0] in docs}, self.pages, dict(self.skipped))

    @property
    def documents(self) -> list[str]:
        return list(dict.fromkeys(e.doc for e in self.examples))


class PageCache:
    """Full-resolution pages rendered on demand from document bytes, least recently used out."""

    def __init__(self, read: Callable[[str], bytes], render: RenderConfig, capacity: int = 48) -> None:
        self.read, self.render, self.capacity = read, render, capacity
        self._docs: OrderedDict[str, list[Image.Image]] = OrderedDict()

    def pages_of(self, doc: str) -> list[Image.Image]:
        if doc in self._docs:
            self._docs.move_to_end(doc)
            return self._docs[doc]
        pages = render_document(self.read(doc), self.render).pages
        self._docs[doc] = pages
        while len(self._docs) > self.capacity:
            self._docs.popitem(last=False)
        return pages

    def page(self, doc: str, page_number: int) -> Image.Image:
        return self.pages_of(doc)[page_number - 1]


def policy_view(page: Image.Image, size: int) -> Image.Image:
    """Greyscale, long side `size`: the same resize the heatmap letterbox applies, so
    letterboxing this view again is an identity resize."""
    scale = size / max(page.size)
    width, height = max(1, round(page.size[0] * scale)), max(1, round(page.size[1] * scale))
    return page.convert("L").resize((width, height), Image.Resampling.BILINEAR)


def build_examples(labels: Sequence[Label], specs: dict[str, FieldSpec], read: Callable[[str], bytes],
                   render: RenderConfig, view_size: int = 512, cache: int = 48) -> ExampleSet:
    """Examples for every label whose document renders; the rest are skipped with a reason."""
    pages = PageCache(read, render, cache)
    examples: list[Example] = []
    views: dict[tuple[str, int], Image.Image] = {}
    skipped: dict[str, str] = {}
    by_doc: dict[str, list[Label]] = {}
    for label in labels:
        by_doc.setdefault(label.doc, []).append(label)
    for doc, doc_labels in by_doc.items():
        try:
            rendered = pages.pages_of(doc)
        except (CropVLMError, OSError) as exc:
            skipped[doc] = f"cannot render: {exc}"
            log.warning("training: skipping %s: %s", doc, exc)
            continue
        for label in doc_labels:
            page_number = label.page or 1
            if page_number > len(rendered):
                skipped[doc] = f"label {label.field!r} on page {page_number} of a {len(rendered)}-page document"
                continue
            if not str(label.answer).strip():
                skipped[doc] = f"empty answer for field {label.field!r}"
                continue
            key = (doc, page_number)
            if key not in views:
                views[key] = policy_view(rendered[page_number - 1], view_size)
            examples.append(Example(doc, page_number, specs[label.field], label.answer, label.box))
    if not examples:
        detail = "; ".join(f"{d}: {why}" for d, why in list(skipped.items())[:5])
        raise TrainingError(f"no usable training examples ({len(labels)} labels){': ' + detail if detail else ''}")
    return ExampleSet(examples, views, pages, skipped)
