"""Why zoomed crops lose spaces: RapidOCR's character positions inside lines it read glued.

    python benchmarks/ocr_space_gaps.py --documents 6 --seed 1000003

For the text fields (company, vendor, address) of synthetic documents, crops the gold box
(enlarged to 4 % of the page, as the evaluation's oracle does) at the reader's 384 px
budget, reads it with `return_word_box=True`, and for every line RapidOCR returned without
spaces, measures the gap between consecutive character centres (CTC columns) over the
line's median character pitch: separately at the gold answer's word boundaries and inside
words. If the two sets separate, a space-restoring step in the engine is possible.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cropvlm.box import Box  # noqa: E402
from cropvlm.crops import resize_long_side  # noqa: E402
from cropvlm.readers.ocr_engines import _rapidocr  # noqa: E402
from cropvlm.readers.spaces import _touches_digit  # noqa: E402
from cropvlm.render import RenderConfig, render_document  # noqa: E402
from cropvlm.synthetic.dataset import write_dataset  # noqa: E402

TEXT_FIELDS = ("company", "vendor", "address")


def char_class(char: str) -> str:
    return "L" if char.isalpha() else "D" if char.isdigit() else "P"


def gap_ratios(folder: Path, budget: int, fields: tuple[str, ...] = TEXT_FIELDS,
               by_class: list | None = None) -> tuple[list[float], list[float]]:
    """Gap / pitch at the gold's word boundaries and inside words; with `by_class`, also
    appends `(classes, at_boundary, ratio)` per gap, classes the two characters' kinds
    (`L` letter, `D` digit, `P` other): `LL`, `DL`, `PL`, ...; `LL (runs touch a digit)` where
    the letter runs on both sides reach a digit (`47301PETALINGJAYA`)."""
    engine = _rapidocr()
    between, inside = [], []
    for row in (folder / "labels.jsonl").read_text().splitlines():
        label = json.loads(row)
        if label["field"] not in fields or not label.get("box"):
            continue
        page = render_document((folder / label["doc"]).read_bytes(), RenderConfig(dpi=150)).pages[0]
        box = Box(*label["box"])
        box = box.scaled(max(1.0, 0.04 / box.area))
        image = resize_long_side(page.crop(box.to_pixels(*page.size)), budget)
        result, _ = engine(np.array(image.convert("RGB")), use_cls=False, return_word_box=True)
        gold = label["answer"].upper()
        ends, total = set(), 0  # positions in the gold without spaces where a word ends
        for word in gold.split():
            total += len(word)
            ends.add(total)
        for _, text, _, char_boxes, *_ in result or []:
            start = gold.replace(" ", "").find(text.upper())
            if " " in text or len(text) < 6 or len(char_boxes) != len(text) or start < 0:
                continue
            centres = [(b[0][0] + b[1][0]) / 2 for b in char_boxes]
            gaps = [b - a for a, b in zip(centres, centres[1:])]
            pitch = statistics.median(gaps)
            for i, gap in enumerate(gaps):
                (between if start + i + 1 in ends else inside).append(round(gap / pitch, 2))
                if by_class is not None:
                    classes = char_class(text[i]) + char_class(text[i + 1])
                    if classes == "LL" and _touches_digit(text, i + 1):
                        classes = "LL (runs touch a digit)"
                    by_class.append((classes, start + i + 1 in ends, round(gap / pitch, 2)))
    return between, inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1_000_003)
    parser.add_argument("--budget", type=int, default=384)
    parser.add_argument("--fields", default=",".join(TEXT_FIELDS), help="comma-separated label fields")
    args = parser.parse_args()
    by_class: list = []
    with tempfile.TemporaryDirectory() as folder:
        write_dataset(folder, args.documents, seed=args.seed)
        between, inside = gap_ratios(Path(folder), args.budget, tuple(args.fields.split(",")), by_class)
    print(f"word boundaries ({len(between)}), gap / median pitch: {sorted(between)}")
    print(f"inside words ({len(inside)}): max {max(inside, default=0):.2f}, "
          f"{sum(r >= 1.45 for r in inside)} at >= 1.45; word boundaries at >= 1.45: "
          f"{sum(r >= 1.45 for r in between)}")
    print("by the kinds of the two characters (L letter, D digit, P other):")
    for classes in sorted({c for c, _, _ in by_class}):
        at = [r for c, b, r in by_class if c == classes and b]
        within = [r for c, b, r in by_class if c == classes and not b]
        print(f"  {classes}: word boundaries {len(at)} ({sum(r >= 1.45 for r in at)} at >= 1.45, "
              f"min {min(at, default=0):.2f}); inside words {len(within)} ({sum(r >= 1.45 for r in within)} "
              f"at >= 1.45, max {max(within, default=0):.2f})")


if __name__ == "__main__":
    main()
