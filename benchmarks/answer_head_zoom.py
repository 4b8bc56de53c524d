"""How much a zoomed re-read around the answer head's pick could add: per field, the head's
pick on the page, its pick on the page with that band read again from full resolution, and
the candidates' ceiling on the page alone and on either read.

    python benchmarks/answer_head_zoom.py HEAD_DIR FOLDER --templates templates/receipt.yaml \
        --fields company,address,total --cache .cropvlm/ocr-cache

The band is the reader's (`cropvlm.answer_head.zoom.band_around`): the picked candidate's
lines plus 1.5 median line heights above and below, across the page's full width, cut from
the full-resolution page and read at the reader's budget; its lines replace the page's lines
in the band. First page of each document only. A zoom head chooses among both readings
itself: score it with answer_head_score.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cropvlm.answer_head import zoom  # noqa: E402
from cropvlm.answer_head.examples import field_candidates  # noqa: E402
from cropvlm.answer_head.features import Page  # noqa: E402
from cropvlm.answer_head.model import AnswerHead  # noqa: E402
from cropvlm.answer_head.ocr_cache import DocumentReads  # noqa: E402
from cropvlm.labels import load_labels  # noqa: E402
from cropvlm.readers.ocr_lines import lines_from_pieces  # noqa: E402
from cropvlm.templates import load_template_set  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("head")
    parser.add_argument("folder", help="labelled folder (documents + labels.jsonl)")
    parser.add_argument("--templates", action="append", required=True)
    parser.add_argument("--fields", default="company,address,total")
    parser.add_argument("--engine", default="rapidocr-spaced")
    parser.add_argument("--budget", type=int, default=768)
    parser.add_argument("--cache", help="OCR cache folder (pages and bands)")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()

    head = AnswerHead.load(args.head)
    labels = load_labels(args.folder, load_template_set(args.templates), args.limit)
    fields = args.fields.split(",")
    counts = {f: [0, 0, 0, 0, 0] for f in fields}  # n, page right, zoomed right, page ceiling, either ceiling
    started = time.perf_counter()
    for doc in labels.documents:
        reads = DocumentReads((labels.folder / doc).read_bytes(), args.engine, args.budget, args.cache)
        page_ocr = reads.pages()[0]
        page = Page.of(lines_from_pieces(page_ocr.pieces), page_ocr.size)
        for label in labels.labels_of(doc):
            if label.field not in fields:
                continue
            spec = labels.fields[label.field]
            on_page = field_candidates([page], spec)
            pick = head.pick(on_page)
            right = on_page.labels(label.answer)
            row = counts[label.field]
            row[0] += 1
            row[3] += bool(right.any())
            if pick.index < 0:
                continue
            row[1] += bool(right[pick.index])
            region = zoom.band_around(page, on_page.candidates[pick.index].lines)
            zoomed = zoom.zoomed_page(page_ocr.pieces, reads.region(0, region), region, page_ocr.size)
            with_zoom = field_candidates([zoomed], spec)
            zoom_pick = head.pick(with_zoom)
            zoom_right = with_zoom.labels(label.answer)
            row[2] += bool(zoom_pick.index >= 0 and zoom_right[zoom_pick.index])
            row[4] += bool(right.any() or zoom_right.any())
    print("| field | n | page pick | zoomed pick | ceiling, page | ceiling, page or zoomed |")
    print("|---|---:|---:|---:|---:|---:|")
    for field, (n, page_right, zoom_right, ceiling, either) in counts.items():
        n = max(n, 1)
        print(f"| {field} | {n} | {page_right / n:.2f} | {zoom_right / n:.2f} | {ceiling / n:.2f} | {either / n:.2f} |")
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
