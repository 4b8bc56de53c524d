"""Training and measuring examples from labelled documents: a folder (documents +
labels.jsonl) or labels whose documents are read by a function (the labels table's URIs).

Every document is read whole by the reader's engine at its budget (through the OCR cache
when one is given), and every labelled field becomes one group of candidates with the
gold answer beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from cropvlm.answer_head.examples import field_candidates
from cropvlm.answer_head.features import Page
from cropvlm.answer_head.ocr_cache import read_bytes
from cropvlm.answer_head.training import Example
from cropvlm.labels import Label, load_labels
from cropvlm.readers.ocr_lines import lines_from_pieces
from cropvlm.render import RenderConfig
from cropvlm.templates import FieldSpec, TemplateSet

Progress = Callable[[int, int], None]


def folder_examples(folder: str | Path, templates: TemplateSet | None = None, engine: str = "rapidocr-spaced",
                    budget: int | None = 768, cache: str | Path | None = None, limit: int | None = None,
                    documents: Sequence[str] | None = None, on_document: Progress | None = None) -> list[Example]:
    """Examples of every labelled (document, field) of `folder`; `documents` keeps only those."""
    label_set = load_labels(folder, templates, limit)
    wanted = None if documents is None else set(documents)
    labels = [label for label in label_set.labels if wanted is None or label.doc in wanted]
    return label_examples(labels, label_set.fields, lambda doc: (label_set.folder / doc).read_bytes(),
                          engine, budget, cache, on_document=on_document)


def label_examples(labels: Sequence[Label], specs: dict[str, FieldSpec], read: Callable[[str], bytes],
                   engine: str = "rapidocr-spaced", budget: int | None = 768, cache: str | Path | None = None,
                   render: RenderConfig = RenderConfig(), on_document: Progress | None = None) -> list[Example]:
    """One example per label: its document (`read(label.doc)` gives the bytes) read whole, the
    field's candidates (`specs` by field name: type and aliases) beside the gold answer."""
    by_doc: dict[str, list[Label]] = {}
    for label in labels:
        by_doc.setdefault(label.doc, []).append(label)
    out = []
    for n, (doc, mine) in enumerate(by_doc.items(), 1):
        pages = [Page.of(lines_from_pieces(p.pieces), p.size)
                 for p in read_bytes(read(doc), engine, budget, cache, render)]
        out += [Example(doc, field_candidates(pages, specs[label.field]), label.answer) for label in mine]
        if on_document is not None:
            on_document(n, len(by_doc))
    return out
