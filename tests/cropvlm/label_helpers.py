"""labels.jsonl folders built in code, shared by the labels and evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image


def write_labels(folder: Path, lines: list, docs: tuple[str, ...] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        Image.new("RGB", (200, 300), "white").save(folder / doc)
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    (folder / "labels.jsonl").write_text(text)
    return folder


def label(doc="a.png", field="total", question="What is the total amount paid?", answer="12.50", **extra):
    return {"doc": doc, "field": field, "question": question, "answer": answer, **extra}
