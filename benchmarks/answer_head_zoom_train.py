"""Would a head that learns from page and zoomed candidates together choose better? Per
field, a band around a picking head's answer is read again from full resolution (as in
answer_head_zoom.py); one LambdaRank booster learns from the page's candidates alone, one
from the page's and the band's candidates in one group with a feature saying which read a
candidate came from; both are scored on held-out documents.

    python benchmarks/answer_head_zoom_train.py PICKING_HEAD REVIEWED_FOLDER HELDOUT_FOLDER \
        --templates templates/receipt.yaml --fields company,address --cache .cropvlm/ocr-cache \
        --band-cache .cropvlm/band-cache

The picking head chooses where the band goes: train it on the reviewed folder (never on the
held-out one). Band reads are kept in --band-cache (about 1.7 CPU s each on receipts).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cropvlm.answer_head.examples import field_candidates  # noqa: E402
from cropvlm.answer_head.features import Page  # noqa: E402
from cropvlm.answer_head.model import AnswerHead  # noqa: E402
from cropvlm.answer_head.ocr_cache import read_document  # noqa: E402
from cropvlm.answer_head.training import HeadConfig  # noqa: E402
from cropvlm.crops import resize_long_side  # noqa: E402
from cropvlm.labels import load_labels  # noqa: E402
from cropvlm.readers.ocr_engines import make_engine  # noqa: E402
from cropvlm.readers.ocr_lines import OcrLine, lines_from_pieces  # noqa: E402
from cropvlm.render import render_document  # noqa: E402
from cropvlm.templates import load_template_set  # noqa: E402

MARGIN_LINES = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("head", help="head that picks where each band goes")
    parser.add_argument("reviewed", help="labelled folder learned from")
    parser.add_argument("heldout", help="labelled folder scored on")
    parser.add_argument("--templates", action="append", required=True)
    parser.add_argument("--fields", default="company,address")
    parser.add_argument("--cache", help="page OCR cache folder")
    parser.add_argument("--band-cache", required=True, help="folder keeping the band reads")
    parser.add_argument("--rounds", type=int, default=HeadConfig.rounds)
    args = parser.parse_args()

    reader = Bands(AnswerHead.load(args.head), load_template_set(args.templates), args.fields.split(","),
                   args.cache, Path(args.band_cache))
    started = time.perf_counter()
    train, heldout = reader.groups(args.reviewed), reader.groups(args.heldout)
    print(f"{len(train)} training and {len(heldout)} held-out answers read in {time.perf_counter() - started:.0f} s")
    print("| candidates learned from and chosen among | " + " | ".join(reader.fields) + " |")
    print("|---|" + "---:|" * len(reader.fields))
    for name, with_band in (("page", False), ("page + zoomed band", True)):
        booster = _fit([_group(g, with_band) for g in train], args.rounds)
        right: dict[str, list[bool]] = {f: [] for f in reader.fields}
        for page, band, gold in heldout:
            features, labels = _group((page, band, gold), with_band)
            right[page.spec.field].append(bool(len(labels) and labels[int(np.argmax(booster.predict(features)))]))
        print(f"| {name} | " + " | ".join(f"{np.mean(right[f]):.2f}" for f in reader.fields) + " |")


class Bands:
    def __init__(self, head: AnswerHead, templates, fields: list[str], cache: str | None, band_cache: Path):
        self.head, self.templates, self.fields, self.cache = head, templates, fields, cache
        self.band_cache = band_cache
        self.band_cache.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine("rapidocr-spaced")

    def groups(self, folder: str) -> list[tuple]:
        """(page candidates, band candidates or None, gold) per labelled answer of `fields`."""
        labels = load_labels(folder, self.templates)
        out = []
        for doc in labels.documents:
            page_ocr = read_document(labels.folder / doc, cache=self.cache)[0]
            lines = lines_from_pieces(page_ocr.pieces)
            page = Page.of(lines, page_ocr.size)
            for label in labels.labels_of(doc):
                if label.field not in self.fields:
                    continue
                spec = labels.fields[label.field]
                on_page = field_candidates([page], spec)
                pick = self.head.pick(on_page)
                band = None
                if pick.index >= 0:
                    chosen = [lines[i] for i in on_page.candidates[pick.index].lines]
                    top = max(0.0, min(l.box[1] for l in chosen) - MARGIN_LINES * page.median_height)
                    bottom = min(page_ocr.size[1], max(l.box[3] for l in chosen) + MARGIN_LINES * page.median_height)
                    pieces = self._band(labels.folder / doc, page_ocr.size, top, bottom)
                    outside = [p for p in page_ocr.pieces if not top <= (p.box[1] + p.box[3]) / 2 <= bottom]
                    band = field_candidates([Page.of(lines_from_pieces(outside + pieces), page_ocr.size)], spec)
                out.append((on_page, band, label.answer))
        return out

    def _band(self, path: Path, size, top: float, bottom: float) -> list[OcrLine]:
        key = hashlib.sha1(f"{path.name}{top:.1f}{bottom:.1f}".encode()).hexdigest()
        stored = self.band_cache / f"{key}.json"
        if stored.exists():
            return [OcrLine(t, c, tuple(b)) for t, c, b in json.loads(stored.read_text())]
        image = render_document(path.read_bytes()).pages[0]
        scale = image.size[0] / size[0]  # full-resolution pixels per pixel read
        band = image.crop((0, int(top * scale), image.size[0], int(bottom * scale)))
        zoomed = resize_long_side(band, 768)
        back = band.size[0] / zoomed.size[0] / scale
        pieces = [OcrLine(p.text, p.confidence, (p.box[0] * back, p.box[1] * back + top, p.box[2] * back,
                                                 p.box[3] * back + top))
                  for p in self.engine.read_pieces(zoomed, crop=True)]
        stored.write_text(json.dumps([[p.text, p.confidence, list(p.box)] for p in pieces]))
        return pieces


def _group(group: tuple, with_band: bool) -> tuple[np.ndarray, np.ndarray]:
    """Features (plus a 'from the band' column) and 0/1 labels of one answer's candidates."""
    page, band, gold = group
    parts = [(page, 0.0)] + ([(band, 1.0)] if with_band and band is not None and len(band.candidates) else [])
    features = np.concatenate([np.column_stack([c.features, np.full(len(c.candidates), flag)]) for c, flag in parts])
    labels = np.concatenate([c.labels(gold) for c, _ in parts])
    return features, labels


def _fit(groups: list[tuple[np.ndarray, np.ndarray]], rounds: int):
    import lightgbm

    groups = [(x, y) for x, y in groups if len(y)]
    data = lightgbm.Dataset(np.concatenate([x for x, _ in groups]), np.concatenate([y for _, y in groups]),
                            group=[len(y) for _, y in groups])
    return lightgbm.train(HeadConfig().lightgbm(), data, rounds)


if __name__ == "__main__":
    main()
