"""Scratch measurement of OcrReader: SROIE receipts (default) or synthetic documents.

    python benchmarks/ocr_reader_check.py --limit 40 --engines rapidocr tesseract
    python benchmarks/ocr_reader_check.py --synthetic 40 --engines rapidocr

Synthetic mode (`--synthetic N`): N generated documents (kinds alternate invoice/receipt,
formats cycle pdf/png/jpeg/tiff, dataset seed `--seed`), gold boxes from the generator.
Modes: `page` (whole page at the budget), `full` (whole page, full resolution),
`oracle` (gold box padded 1 point, grown to >= 4% of the page: OraclePolicy) and
`center` (box 25,25,75,75: CenterPolicy(50)).

`--cache DIR` keeps raw OCR pieces on disk by image content, so a rerun after a change to
line building or answer rules costs no OCR (timings then measure cache hits, not OCR).

SROIE mode:
For each engine: exact match (after normalisation) and ANLS per field, seconds per page and
per answer, (1) reading the whole page at the budget and (2) with a crop around where the
gold answer is printed. The crop's location comes from a full-resolution RapidOCR pass:
the line(s) holding the gold answer, area enlarged x4 (the paper's enlargement for small
boxes), clamped to the page. Pages where the gold cannot be located get no crop.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import time
from collections import defaultdict
from pathlib import Path

from PIL import Image

from cropvlm.box import Box
from cropvlm.normalize import anls, exact_match, find_amounts, find_dates, normalize_text, normalize_value
from cropvlm.readers.base import ReadRequest
from cropvlm.readers.ocr import OcrReader
from cropvlm.readers.ocr_engines import RapidOcrEngine, make_engine
from cropvlm.readers.ocr_lines import lines_from_pieces
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


class CachedEngine:
    """An engine whose raw pieces are kept on disk by image content (same pixels, same OCR);
    lines are rebuilt with the current `lines_from_pieces` on every read."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name, self.folder, self.inner = name, folder, make_engine(name)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = 0

    def read(self, image, crop: bool = False):
        key = hashlib.blake2b(image.tobytes() + repr((image.size, crop, self.name)).encode(), digest_size=16)
        path = self.folder / f"{key.hexdigest()}.pkl"
        if path.exists():
            self.hits += 1
            pieces = pickle.loads(path.read_bytes())
        else:
            self.misses += 1
            pieces = self.inner.read_pieces(image, crop)
            path.write_bytes(pickle.dumps(pieces))
        return lines_from_pieces(pieces)


def make_reader(engine: str, budget: int | None, cache: str | None) -> OcrReader:
    if not cache:
        return OcrReader(engine, budget)
    cached = CachedEngine(engine, Path(cache))
    return OcrReader(engine, budget, engine_factory=lambda name: cached)


def print_table(title, rows, fields, em, an, seconds, sources, n_pages, group=None) -> None:
    print(f"\n{title}")
    print(f"{'engine':10} {'mode':7} " + " ".join(f"{f:>15}" for f in fields) + f" {'mean':>15}  s/page  sources")
    for engine, mode in rows:
        cells = []
        for field in fields:
            key = (engine, mode, field)
            cells.append(f"{100 * sum(em[key]) / len(em[key]):5.1f}/{100 * sum(an[key]) / len(an[key]):5.1f}"
                         if em[key] else "-")
        all_em = [x for f in fields for x in em[engine, mode, f]]
        all_an = [x for f in fields for x in an[engine, mode, f]]
        cells.append(f"{100 * sum(all_em) / len(all_em):5.1f}/{100 * sum(all_an) / len(all_an):5.1f}")
        src = {k[-1]: c for k, c in sources.items() if k[:-1] == (engine, mode, group)[: len(k) - 1]}
        spent = seconds[(engine, mode, group) if group else (engine, mode)]
        print(f"{engine:10} {mode:7} " + " ".join(f"{c:>15}" for c in cells)
              + f"  {spent / n_pages:6.2f}  {src}")
    print("cells: exact-match % / ANLS %")


def synthetic(args) -> None:
    import dataclasses

    from cropvlm.crops import cut_crop
    from cropvlm.policies.base import CropRequest
    from cropvlm.policies.baselines import CenterPolicy, OraclePolicy
    from cropvlm.render import render_document
    from cropvlm.synthetic import generate_document
    from cropvlm.synthetic.dataset import document_seed
    from cropvlm.synthetic.document import FORMATS, KINDS

    specs = {kind: {s.field: s for s in load_template(ROOT / f"templates/{kind}.yaml").fields} for kind in KINDS}
    policies = {"oracle": OraclePolicy(), "center": CenterPolicy(50.0)}
    modes = ["page", "full", "oracle", "center"]
    readers = {(e, m): make_reader(e, None if m == "full" else args.budget, args.cache)
               for e in args.engines for m in modes}
    em, an = defaultdict(list), defaultdict(list)
    seconds, sources = defaultdict(float), defaultdict(int)
    misses = []
    for i in range(args.synthetic):
        kind, fmt = KINDS[i % len(KINDS)], FORMATS[(i // len(KINDS)) % len(FORMATS)]
        doc = dataclasses.replace(generate_document(kind, document_seed(args.seed, i), fmt), name=f"{kind}_{i:04d}")
        pages = render_document(doc.data).pages
        golds = [g for g in doc.gold if g.field in specs[kind]]
        crops = {}
        for name, policy in policies.items():
            proposals = policy.propose([CropRequest(pages[g.page_number - 1], g.question, g.field, g.box) for g in golds])
            crops[name] = [cut_crop(pages[g.page_number - 1], p.box)[0] if p.box else None
                           for g, p in zip(golds, proposals)]
        for engine in args.engines:
            for mode in modes:
                requests = [ReadRequest(pages[g.page_number - 1], crops[mode][j] if mode in crops else None,
                                        specs[kind][g.field]) for j, g in enumerate(golds)]
                start = time.perf_counter()
                answers = readers[engine, mode].answer(requests)
                seconds[engine, mode, kind] += time.perf_counter() - start
                for g, answer in zip(golds, answers):
                    ok = exact_match(answer.text, g.answer, specs[kind][g.field].type)
                    em[engine, mode, g.field].append(ok)
                    an[engine, mode, g.field].append(anls(answer.text, g.answer))
                    sources[engine, mode, kind, answer.source] += 1
                    if not ok:
                        misses.append(f"{engine:9} {mode:6} {doc.name}{doc.suffix:5} {g.field:15} "
                                      f"gold={g.answer!r} pred={answer.text!r} ({answer.source}, {answer.confidence:.2f})")
        print(f"[{i + 1}/{args.synthetic}] {doc.name}{doc.suffix} ({len(pages)} p)", flush=True)
    if args.misses:
        Path(args.misses).write_text("\n".join(misses) + "\n")
    n = args.synthetic
    for kind in KINDS:
        fields = list(specs[kind])
        n_kind = len([i for i in range(n) if KINDS[i % len(KINDS)] == kind])
        print_table(f"{kind}s: {n_kind} documents, budget {args.budget} (full = no budget)",
                    [(e, m) for e in args.engines for m in modes], fields, em, an, seconds, sources, n_kind, kind)
    print("\noverall (all fields of both kinds):")
    all_fields = [f for kind in KINDS for f in specs[kind]]
    for engine in args.engines:
        for mode in modes:
            all_em = [x for f in all_fields for x in em[engine, mode, f]]
            all_an = [x for f in all_fields for x in an[engine, mode, f]]
            print(f"{engine:10} {mode:7} exact {100 * sum(all_em) / len(all_em):5.1f}  "
                  f"ANLS {100 * sum(all_an) / len(all_an):5.1f}  ({len(all_em)} answers)")
    print("(s/page is per document and mode; with --cache it measures cache hits, not OCR)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/sroie_dev"))
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--engines", nargs="+", default=["rapidocr", "tesseract"])
    parser.add_argument("--budget", type=int, default=768)
    parser.add_argument("--no-crop", action="store_true")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="measure on N synthetic documents instead of SROIE")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed of --synthetic")
    parser.add_argument("--cache", default=None, metavar="DIR", help="keep raw OCR pieces in DIR")
    parser.add_argument("--misses", default=None, metavar="FILE", help="write wrong answers to FILE")
    args = parser.parse_args()
    if args.synthetic:
        synthetic(args)
        return

    data = Path(args.data)
    specs = {s.field: s for s in load_template(ROOT / "templates/receipt.yaml").fields}
    gold: dict[str, dict[str, str]] = defaultdict(dict)
    for row in map(json.loads, (data / "labels.jsonl").read_text().splitlines()):
        gold[row["doc"]][row["field"]] = row["answer"]
    docs = sorted(gold)[: args.limit]
    fields = [f for f in specs if any(f in gold[d] for d in docs)]

    locator = CachedEngine("rapidocr", Path(args.cache)) if args.cache else RapidOcrEngine()
    modes = ["page"] + ([] if args.no_crop else ["crop"])
    readers = {e: make_reader(e, args.budget, args.cache) for e in args.engines}
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
