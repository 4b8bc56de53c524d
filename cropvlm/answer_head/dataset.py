"""Training and measuring examples from labelled documents: a folder (documents +
labels.jsonl) or labels whose documents are read by a function (the labels table's URIs).

Every document is read whole by the reader's engine at its budget (through the OCR cache
when one is given), and every labelled field becomes one group of candidates with the
gold answer beside it. Given a `zoom_head`, fields of the types it zooms also get the group
the reader would see after zooming around that head's pick (`cropvlm.answer_head.zoom`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from cropvlm.answer_head import zoom
from cropvlm.answer_head.examples import FieldCandidates, field_candidates
from cropvlm.answer_head.features import Page
from cropvlm.answer_head.model import AnswerHead
from cropvlm.answer_head.ocr_cache import DocumentReads, PageOcr
from cropvlm.answer_head.training import Example
from cropvlm.labels import Label, load_labels
from cropvlm.readers.ocr_lines import lines_from_pieces
from cropvlm.render import RenderConfig
from cropvlm.templates import FieldSpec, TemplateSet

Progress = Callable[[int, int], None]


def folder_examples(folder: str | Path, templates: TemplateSet | None = None, engine: str = "rapidocr-spaced",
                    budget: int | None = 768, cache: str | Path | None = None, limit: int | None = None,
                    documents: Sequence[str] | None = None, on_document: Progress | None = None,
                    zoom_head: AnswerHead | None = None) -> list[Example]:
    """Examples of every labelled (document, field) of `folder`; `documents` keeps only those."""
    label_set = load_labels(folder, templates, limit)
    wanted = None if documents is None else set(documents)
    labels = [label for label in label_set.labels if wanted is None or label.doc in wanted]
    return label_examples(labels, label_set.fields, lambda doc: (label_set.folder / doc).read_bytes(),
                          engine, budget, cache, on_document=on_document, zoom_head=zoom_head)


def label_examples(labels: Sequence[Label], specs: dict[str, FieldSpec], read: Callable[[str], bytes],
                   engine: str = "rapidocr-spaced", budget: int | None = 768, cache: str | Path | None = None,
                   render: RenderConfig = RenderConfig(), on_document: Progress | None = None,
                   zoom_head: AnswerHead | None = None) -> list[Example]:
    """One example per label: its document (`read(label.doc)` gives the bytes) read whole, the
    field's candidates (`specs` by field name: type and aliases) beside the gold answer."""
    by_doc: dict[str, list[Label]] = {}
    for label in labels:
        by_doc.setdefault(label.doc, []).append(label)
    out = []
    for n, (doc, mine) in enumerate(by_doc.items(), 1):
        reads = DocumentReads(read(doc), engine, budget, cache, render)
        ocr = reads.pages()
        pages = [Page.of(lines_from_pieces(p.pieces), p.size) for p in ocr]
        for label in mine:
            spec = specs[label.field]
            field = field_candidates(pages, spec)
            zoomed = None
            if zoom_head is not None and spec.type in zoom.ZOOM_TYPES:
                zoomed = _zoomed(zoom_head, field, pages, ocr, reads.region)
            out.append(Example(doc, field, label.answer, zoomed))
        if on_document is not None:
            on_document(n, len(by_doc))
    return out


def _zoomed(head: AnswerHead, field: FieldCandidates, pages: Sequence[Page], ocr: Sequence[PageOcr],
            read: Callable[[int, zoom.Region], list]) -> FieldCandidates | None:
    """The group the reader sees after zooming around `head`'s pick (None: nothing picked)."""
    pick = head.pick(field)
    if pick.index < 0:
        return None
    page = field.pages[pick.index]
    region = zoom.band_around(pages[page], field.candidates[pick.index].lines)
    return zoom.zoom_field(ocr[page].pieces, read(page, region), region, ocr[page].size, field, field.spec)
