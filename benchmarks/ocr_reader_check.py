"""Scratch measurement of OcrReader on data/sroie_dev: whole page vs an oracle-ish crop.

    python benchmarks/ocr_reader_check.py --limit 40 --engines rapidocr tesseract

For each engine: exact match (after normalisation) and ANLS per field, seconds per page and
per answer, (1) reading the whole page at the budget and (2) with a crop around where the
gold answer is printed. The crop's location comes from a full-resolution RapidOCR pass:
the line(s) holding the gold answer, area enlarged x4 (the paper's enlargement for small
boxes), clamped to the page. Pages where the gold cannot be located get no crop.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from PIL import Image

from cropvlm.box import Box
from cropvlm.normalize import anls, exact_match, find_amounts, find_dates, normalize_text, normalize_value
from cropvlm.readers.base import ReadRequest
from cropvlm.readers.ocr import OcrReader
from cropvlm.readers.ocr_engines import RapidOcrEngine
from cropvlm.templates import load_template

ROOT = Path(__file__).resolve().parents[1]


def locate(lines, gold: str, answer_type: str):
    """Pixel box of the OCR line(s) that print `gold`, or None."""
    if answer_type == "date":
        iso = normalize_value(gold, "date")
        hits = [l for l in lines if iso and iso in [d for d, _ in find_dates(l.text)]]
    elif answer_type == "amount":
        value = normalize_value(gold, "amount")
        hits = [l for l in lines if value and any(f"{v:.2f}" == value for v, _ in find_amounts(l.text))]
        hits = hits[-1:]  # the total is printed last more often than first
    else:
        gold_tokens = set(normalize_text(gold).split())
        scored = []
        for line in lines:
            tokens = normalize_text(line.text).split()
            if tokens:
                scored.append((sum(t in gold_tokens for t in tokens) / len(tokens), line))
        hits = [l for s, l in scored if s >= 0.6]
        if len(gold_tokens) <= 6:  # a name: the single best line
            hits = [max(scored, key=lambda p: p[0])[1]] if scored and max(s for s, _ in scored) >= 0.5 else []
    hits = hits[:1] if answer_type == "date" else hits
    if not hits:
        return None
    return (min(l.box[0] for l in hits), min(l.box[1] for l in hits),
            max(l.box[2] for l in hits), max(l.box[3] for l in hits))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/sroie_dev"))
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--engines", nargs="+", default=["rapidocr", "tesseract"])
    parser.add_argument("--budget", type=int, default=768)
    parser.add_argument("--no-crop", action="store_true")
    args = parser.parse_args()

    data = Path(args.data)
    specs = {s.field: s for s in load_template(ROOT / "templates/receipt.yaml").fields}
    gold: dict[str, dict[str, str]] = defaultdict(dict)
    for row in map(json.loads, (data / "labels.jsonl").read_text().splitlines()):
        gold[row["doc"]][row["field"]] = row["answer"]
    docs = sorted(gold)[: args.limit]
    fields = [f for f in specs if any(f in gold[d] for d in docs)]

    locator = RapidOcrEngine()
    modes = ["page"] + ([] if args.no_crop else ["crop"])
    readers = {e: OcrReader(e, args.budget) for e in args.engines}
    em = defaultdict(list)
    an = defaultdict(list)
    seconds = defaultdict(float)
    sources = defaultdict(int)
    located = 0
    for n, doc in enumerate(docs, 1):
        page = Image.open(data / doc).convert("RGB")
        crops = {}
        if not args.no_crop:
            full_lines = locator.read(page)
            for field in fields:
                box = locate(full_lines, gold[doc][field], specs[field].type)
                if box is not None:
                    located += 1
                    pct = Box.from_pixels(*box, page.width, page.height).scaled(4.0)
                    crops[field] = page.crop(pct.to_pixels(page.width, page.height))
        for engine, reader in readers.items():
            for mode in modes:
                requests = [ReadRequest(page, crops.get(f) if mode == "crop" else None, specs[f]) for f in fields]
                start = time.perf_counter()
                answers = reader.answer(requests)
                seconds[engine, mode] += time.perf_counter() - start
                for field, answer in zip(fields, answers):
                    g = gold[doc][field]
                    em[engine, mode, field].append(exact_match(answer.text, g, specs[field].type))
                    an[engine, mode, field].append(anls(answer.text, g))
                    sources[engine, mode, answer.source] += 1
        print(f"[{n}/{len(docs)}] {doc}", flush=True)

    print(f"\n{len(docs)} pages, budget {args.budget}; gold located for crops: {located}/{len(docs) * len(fields)}")
    print(f"{'engine':10} {'mode':5} " + " ".join(f"{f:>15}" for f in fields) + f" {'mean':>15}  s/page s/answer  sources")
    for engine in args.engines:
        for mode in modes:
            cells = []
            for field in fields:
                key = (engine, mode, field)
                cells.append(f"{100 * sum(em[key]) / len(em[key]):5.1f}/{100 * sum(an[key]) / len(an[key]):5.1f}")
            all_em = [x for f in fields for x in em[engine, mode, f]]
            all_an = [x for f in fields for x in an[engine, mode, f]]
            cells.append(f"{100 * sum(all_em) / len(all_em):5.1f}/{100 * sum(all_an) / len(all_an):5.1f}")
            src = {s: c for (e, m, s), c in sources.items() if (e, m) == (engine, mode)}
            per_page = seconds[engine, mode] / len(docs)
            print(f"{engine:10} {mode:5} " + " ".join(f"{c:>15}" for c in cells)
                  + f"  {per_page:6.2f} {per_page / len(fields):8.2f}  {src}")
    print("cells: exact-match % / ANLS %")


if __name__ == "__main__":
    main()
