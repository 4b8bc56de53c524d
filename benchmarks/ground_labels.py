"""A labelled folder without gold boxes, given the boxes the retrain flow's grounding finds.

    python benchmarks/ground_labels.py ../shared/data/sroie_dev /tmp/sroie-grounded --templates templates/receipt.yaml
    cropvlm evaluate /tmp/sroie-grounded --templates templates/receipt.yaml --policies full oracle default

Real receipts come with answers, not boxes, so `cropvlm evaluate` has no `oracle` row for
them: nothing says what the best crop could buy the reader there. This writes
`OUT/labels.jsonl` with a `box` for every answer that `cropvlm.training.grounding` locates
on its full-resolution page (the same boxes the retrain flow's SFT learns from), and links
the documents beside it, so `oracle` means "the grounded value box". Answers it cannot box
(printed nowhere readable, or several times far apart) keep no box; the oracle policy
falls back to the whole page for them, and the report counts them. Nothing here is
trained on; the output folder is scratch (not committed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a labelled folder (labels.jsonl + documents)")
    parser.add_argument("out", type=Path, help="where the grounded labels.jsonl and links go")
    parser.add_argument("--templates", action="append", default=[], help="field types and printed labels")
    parser.add_argument("--engine", default="rapidocr", help="OCR engine that reads the full page")
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--limit", type=int, default=None, help="first N documents")
    args = parser.parse_args(argv)

    from cropvlm.labels import load_labels
    from cropvlm.readers.ocr_engines import make_engine
    from cropvlm.render import RenderConfig
    from cropvlm.templates import load_template_set
    from cropvlm.training.examples import build_examples
    from cropvlm.training.grounding import ground_answers

    folder = args.folder.resolve()
    label_set = load_labels(folder, load_template_set(args.templates) if args.templates else None, args.limit)
    examples = build_examples(label_set.labels, label_set.fields, lambda doc: (folder / doc).read_bytes(),
                              RenderConfig(dpi=args.dpi))
    grounded, report = ground_answers(examples, make_engine(args.engine))
    boxes = {(e.doc, e.spec.field): (e.page_number, e.gold_box) for e in grounded.examples}

    args.out.mkdir(parents=True, exist_ok=True)
    lines = []
    for label in label_set.labels:
        row = {"doc": label.doc, "field": label.field, "question": label.question, "answer": label.answer}
        page, box = boxes.get((label.doc, label.field), (label.page, label.box))
        if box is not None:
            row.update(page=page, box=[round(v, 2) for v in box.as_tuple()])
        lines.append(json.dumps(row))
    (args.out / "labels.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for doc in label_set.documents:
        link = args.out / doc
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(folder / doc)
    summary = {**report.as_dict(), "labels": len(label_set.labels), "skipped": grounded.skipped}
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
