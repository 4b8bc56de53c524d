"""Learning curve of the OCR reader's answer head: held-out exact match after learning from
0, 25, 50, 100 and all reviewed documents, beside the rule-based reader on the same OCR.

    python benchmarks/answer_head_curve.py --reviewed REVIEWED_FOLDER --heldout HELDOUT_FOLDER \
        --templates templates/receipt.yaml [--synthetic SYNTHETIC_FOLDER] --cache .cropvlm/ocr-cache \
        --out reports/answer_head

Each point fits a head on the synthetic folder's documents (when given) plus the first N
reviewed documents; N = 0 is the head trained on synthetic documents alone. Each head
zooms as the reader does (bands around its own picks, read once and kept in the cache
folder; --no-zoom: page candidates only). Writes curve.md (tables, calibration error,
accuracy at coverage) and curve.png.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cropvlm.answer_head.dataset import folder_examples  # noqa: E402
from cropvlm.answer_head.scores import score_head  # noqa: E402
from cropvlm.answer_head.training import HeadConfig, fit_zooming_head  # noqa: E402
from cropvlm.labels import load_labels  # noqa: E402
from cropvlm.synthetic.document import TEMPLATE_DIR  # noqa: E402
from cropvlm.templates import load_template_set  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviewed", required=True, help="labelled folder learned from, in file order")
    parser.add_argument("--heldout", required=True, help="labelled folder measured on (never learned from)")
    parser.add_argument("--synthetic", help="labelled synthetic folder every point also learns from")
    parser.add_argument("--synthetic-limit", type=int, help="only the synthetic folder's first N documents")
    parser.add_argument("--templates", action="append", required=True, help="templates of the real documents")
    parser.add_argument("--points", default="0,25,50,100,all", help="reviewed documents per point")
    parser.add_argument("--cache", help="page OCR cache folder")
    parser.add_argument("--no-zoom", dest="zoom", action="store_false", help="heads without zoom boosters")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    started = time.perf_counter()
    templates = load_template_set(args.templates)
    settings = dict(cache=args.cache)
    synthetic_templates = load_template_set([TEMPLATE_DIR / "receipt.yaml", TEMPLATE_DIR / "invoice.yaml"])
    docs = list(dict.fromkeys(label.doc for label in load_labels(args.reviewed, templates).labels))
    rows, tables = [], []
    for point in args.points.split(","):
        n = len(docs) if point == "all" else min(int(point), len(docs))
        if not n and not args.synthetic:
            continue

        def examples(zoom_head, n=n):
            out = []
            if args.synthetic:
                out += folder_examples(args.synthetic, synthetic_templates, limit=args.synthetic_limit,
                                       zoom_head=zoom_head, **settings)
            if n:
                out += folder_examples(args.reviewed, templates, documents=docs[:n], zoom_head=zoom_head, **settings)
            return out

        head = fit_zooming_head(examples, HeadConfig(), zoom=args.zoom)
        scores = score_head(head, folder_examples(args.heldout, templates, **settings,
                                                  zoom_head=head if head.zoom_boosters else None))
        share, exact = scores.at_threshold(0.8)
        rows.append((n, scores))
        tables.append(f"#### {n} reviewed documents{' + synthetic' if args.synthetic else ''}\n\n{scores.table()}\n\n"
                      f"calibration error {scores.ece:.3f}; confidence >= 0.8: {share:.0%} of answers, "
                      f"{exact:.3f} exact among them\n")
        print(f"{n:4d} reviewed: exact {scores.exact:.3f} (rules {scores.rules:.3f}, ceiling {scores.ceiling:.3f}), "
              f"ECE {scores.ece:.3f}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = ["| reviewed documents | exact | rules | ceiling | calibration error |", "|---:|---:|---:|---:|---:|"]
    summary += [f"| {n} | {s.exact:.3f} | {s.rules:.3f} | {s.ceiling:.3f} | {s.ece:.3f} |" for n, s in rows]
    coverage = ["| confidence >= | answers | exact among them |", "|---:|---:|---:|"]
    coverage += [f"| {c.threshold:.2f} | {c.share:.0%} | {c.exact:.3f} |" for c in rows[-1][1].coverage]
    (out / "curve.md").write_text(
        f"Held-out: {args.heldout} ({rows[-1][1].n} answers); reviewed: {args.reviewed}; synthetic: {args.synthetic}; "
        f"{time.perf_counter() - started:.0f} s\n\n" + "\n".join(summary) + "\n\nAccuracy at coverage (all reviewed):\n\n"
        + "\n".join(coverage) + "\n\n" + "\n".join(tables), encoding="utf-8")
    _plot(rows, out / "curve.png", Path(args.heldout).name)


def _plot(rows, path: Path, heldout: str) -> None:
    """Exact match against reviewed documents: head (blue), rules (orange), ceiling (grey)."""
    from PIL import Image, ImageDraw, ImageFont

    width, height, left, top, plot_w, plot_h = 640, 420, 60, 50, 540, 300
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    n_max = max(max(n for n, _ in rows), 1)

    def xy(n: int, value: float) -> tuple[float, float]:
        return left + plot_w * n / n_max, top + plot_h * (1 - value)

    draw.text((left, 8), f"answer head on {heldout} (n={rows[-1][1].n} answers): exact match", fill="black", font=font)
    draw.text((left, 26), "blue: answer head   orange: rules   grey: candidates' ceiling", fill="black", font=font)
    for i in range(6):
        y = top + plot_h * i / 5
        draw.line([(left, y), (left + plot_w, y)], fill=(225, 225, 225))
        draw.text((left - 30, y - 7), f"{1 - i / 5:.1f}", fill="black", font=font)
    for n, _ in rows:
        draw.text((xy(n, 0)[0] - 8, top + plot_h + 8), str(n), fill="black", font=font)
    draw.text((left + plot_w / 2 - 90, height - 40), "reviewed documents learned from", fill="black", font=font)
    for attr, color in (("ceiling", (150, 150, 150)), ("rules", (255, 127, 14)), ("exact", (31, 119, 180))):
        points = [xy(n, getattr(s, attr)) for n, s in rows]
        if len(points) > 1:
            draw.line(points, fill=color, width=2)
        for x, y in points:
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=color)
    image.save(path, format="PNG")


if __name__ == "__main__":
    main()
