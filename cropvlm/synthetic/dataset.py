"""`write_dataset`: a folder of synthetic documents plus `labels.jsonl`.

labels.jsonl follows data/sroie_dev/labels.jsonl (doc, field, question, answer, source),
one line per document x field, with two extra keys: "page" (1-based) and "box"
([x1, y1, x2, y2] in percent, 2 decimals).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from cropvlm.synthetic.document import FORMATS, KINDS, SyntheticDocument, generate_document


def document_seed(seed: int, index: int) -> int:
    """Per-document seed from (dataset seed, index), stable across Python runs and versions."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:4], "big")


def write_dataset(folder: str | Path, n: int, seed: int = 0, kinds: Sequence[str] = KINDS,
                  formats: Sequence[str] = FORMATS, dpi: int = 150) -> list[SyntheticDocument]:
    """Documents i = 0..n-1: kind cycles fastest, then format, so every (kind, format) pair
    appears within len(kinds) * len(formats) documents. Files are named `<kind>_<i:04d><suffix>`."""
    if not kinds or not formats:
        raise ValueError("kinds and formats must not be empty")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    docs, lines = [], []
    for i in range(n):
        kind, fmt = kinds[i % len(kinds)], formats[(i // len(kinds)) % len(formats)]
        doc_seed = document_seed(seed, i)
        doc = dataclasses.replace(generate_document(kind, doc_seed, fmt, dpi), name=f"{kind}_{i:04d}")
        (folder / f"{doc.name}{doc.suffix}").write_bytes(doc.data)
        for g in doc.gold:
            lines.append(json.dumps({
                "doc": f"{doc.name}{doc.suffix}", "field": g.field, "question": g.question, "answer": g.answer,
                "source": f"synthetic:{kind}:seed={doc_seed}", "page": g.page_number,
                "box": [round(v, 2) for v in g.box.as_tuple()],
            }, ensure_ascii=False))
        docs.append(doc)
    (folder / "labels.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return docs
