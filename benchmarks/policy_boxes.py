"""Where a crop policy's boxes fall against the gold (or grounded) value boxes, per field.

    python benchmarks/policy_boxes.py /tmp/sroie-grounded default
    python benchmarks/policy_boxes.py /tmp/sroie-grounded heatmap:/path/to/candidate --docs heldout.txt

For every label with a `box` in `FOLDER/labels.jsonl` (the synthetic generator writes them;
`benchmarks/ground_labels.py` adds grounded ones to real documents), the policy proposes a
box for the label's page and question, and the proposal is counted as `contains` (covers
>= 95 % of the gold box), `partial`, `misses` (covers <= 5 %) or `page` (no box). Accuracy
tables say *that* a policy reads worse than no crop; this says whether its boxes are in the
wrong place or cut the value. Median box areas are in percent of the page.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CONTAINS, MISSES = 0.95, 0.05  # share of the gold box's area the proposal covers


def coverage(proposal, gold) -> float:
    """Share of `gold`'s area inside `proposal` (both Box)."""
    return proposal.overlap(gold) / gold.area


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a labelled folder whose labels carry boxes")
    parser.add_argument("policy", help="a policy spec: default, heatmap:FOLDER, center, hf:MODEL ...")
    parser.add_argument("--docs", type=Path, default=None, help="a file of document names to keep (one per line)")
    parser.add_argument("--dpi", type=int, default=150)
    args = parser.parse_args(argv)

    from cropvlm.labels import load_labels
    from cropvlm.policies.base import CropRequest
    from cropvlm.render import RenderConfig, render_document
    from cropvlm.specs import build_policy

    keep = set(args.docs.read_text().split()) if args.docs else None
    labels = [label for label in load_labels(args.folder).labels
              if label.box is not None and (keep is None or label.doc in keep)]
    pages: dict[str, list] = {}
    requests, golds = [], []
    for label in labels:
        if label.doc not in pages:
            pages[label.doc] = render_document((args.folder / label.doc).read_bytes(), RenderConfig(dpi=args.dpi)).pages
        requests.append(CropRequest(pages[label.doc][(label.page or 1) - 1], label.question, label.field,
                                    gold_box=label.box))
        golds.append((label.field, label.box))
    proposals = build_policy(args.policy).propose(requests)

    counts: dict[str, Counter] = defaultdict(Counter)
    areas: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (field, gold), proposal in zip(golds, proposals, strict=True):
        box = proposal.box
        if box is None:
            counts[field]["page"] += 1
            continue
        share = coverage(box, gold)
        counts[field]["contains" if share >= CONTAINS else "misses" if share <= MISSES else "partial"] += 1
        areas[field].append((box.area * 100, gold.area * 100))
    report = {"policy": args.policy, "labels": len(golds), "fields": {}}
    for field, c in counts.items():
        n = sum(c.values())
        row = {"n": n, **{k: round(c[k] / n, 3) for k in ("contains", "partial", "misses", "page")}}
        if areas[field]:
            row["median_area"] = round(statistics.median(a for a, _ in areas[field]), 2)
            row["median_gold_area"] = round(statistics.median(g for _, g in areas[field]), 2)
        report["fields"][field] = row
        print(f"{field:16s} n={n:4d}  contains {row['contains']:.2f}  partial {row['partial']:.2f}  "
              f"misses {row['misses']:.2f}  page {row['page']:.2f}  median area {row.get('median_area', 0):.1f} % "
              f"(gold {row.get('median_gold_area', 0):.1f} %)")
    return report


if __name__ == "__main__":
    main()
