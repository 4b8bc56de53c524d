"""`write_dataset`: a folder of synthetic documents plus `labels.jsonl`.

labels.jsonl follows data/sroie_dev/labels.jsonl (doc, field, question, answer, source),
one line per document x field, with two extra keys: "page" (1-based) and "box"
([x1, y1, x2, y2] in percent, 2 decimals). "source" is `synthetic:<kind>:seed=<n>`, with
the language after the kind outside English (`synthetic:invoice:nl:seed=<n>`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from cropvlm.synthetic.document import FORMATS, KINDS, SyntheticDocument, generate_document
from cropvlm.synthetic.languages import LANGUAGES


def document_seed(seed: int, index: int) -> int:
    """Per-document seed from (dataset seed, index), stable across Python runs and versions."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:4], "big")


def write_dataset(folder: str | Path, n: int, seed: int = 0, kinds: Sequence[str] = KINDS,
                  formats: Sequence[str] = FORMATS, dpi: int = 150,
                  languages: Sequence[str] = ("en",)) -> list[SyntheticDocument]:
    """Documents i = 0..n-1: kind cycles fastest, then language, then format, so every
    (kind, language) pair appears within len(kinds) * len(languages) documents. Files are
    named `<kind>_<i:04d><suffix>`, `<kind>_<language>_<i:04d><suffix>` outside English.
    `languages=LANGUAGES` mixes all six; the default gives the English documents."""
    if not kinds or not formats or not languages:
        raise ValueError("kinds, formats and languages must not be empty")
    if unknown := set(languages) - set(LANGUAGES):
        raise ValueError(f"languages must be among {LANGUAGES}, got {sorted(unknown)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    docs, lines = [], []
    for i in range(n):
        kind, language = kinds[i % len(kinds)], languages[(i // len(kinds)) % len(languages)]
        fmt = formats[(i // (len(kinds) * len(languages))) % len(formats)]
        doc_seed = document_seed(seed, i)
        tag = kind if language == "en" else f"{kind}:{language}"  # enough to regenerate the document
        doc = dataclasses.replace(generate_document(kind, doc_seed, fmt, dpi, language),
                                  name=f"{tag.replace(':', '_')}_{i:04d}")
        (folder / f"{doc.name}{doc.suffix}").write_bytes(doc.data)
        for g in doc.gold:
            lines.append(json.dumps({
                "doc": f"{doc.name}{doc.suffix}", "field": g.field, "question": g.question, "answer": g.answer,
                "source": f"synthetic:{tag}:seed={doc_seed}", "page": g.page_number,
                "box": [round(v, 2) for v in g.box.as_tuple()],
            }, ensure_ascii=False))
        docs.append(doc)
    (folder / "labels.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return docs
