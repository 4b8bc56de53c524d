"""Training and measuring examples from a labelled folder (documents + labels.jsonl).

Every document is read whole by the reader's engine at its budget (through the OCR cache
when one is given), and every labelled field becomes one group of candidates with the
gold answer beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from cropvlm.answer_head.examples import field_candidates
from cropvlm.answer_head.features import Page
from cropvlm.answer_head.ocr_cache import read_document
from cropvlm.answer_head.training import Example
from cropvlm.labels import load_labels
from cropvlm.readers.ocr_lines import lines_from_pieces
from cropvlm.templates import TemplateSet


def folder_examples(folder: str | Path, templates: TemplateSet | None = None, engine: str = "rapidocr-spaced",
                    budget: int | None = 768, cache: str | Path | None = None, limit: int | None = None,
                    documents: Sequence[str] | None = None,
                    on_document: Callable[[int, int], None] | None = None) -> list[Example]:
    """Examples of every labelled (document, field) of `folder`; `documents` keeps only those."""
    label_set = load_labels(folder, templates, limit)
    docs = [d for d in label_set.documents if documents is None or d in set(documents)]
    out = []
    for n, doc in enumerate(docs, 1):
        pages = [Page.of(lines_from_pieces(p.pieces), p.size)
                 for p in read_document(label_set.folder / doc, engine, budget, cache)]
        for label in label_set.labels_of(doc):
            spec = label_set.fields[label.field]
            out.append(Example(doc, field_candidates(pages, spec), label.answer))
        if on_document is not None:
            on_document(n, len(docs))
    return out
