"""Evaluation output: results.csv (the contract), answers.csv, results.md, a PNG plot.

results.csv: one row per (reader, policy, field) plus a `field=ALL` row per (reader,
policy), columns exactly `CSV_COLUMNS`. The plot (exact match and ANLS against seconds per
answer, one point per configuration) is drawn with Pillow, so no plotting library is needed.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from cropvlm.evaluation.metrics import ALL, CSV_COLUMNS, MetricRow, Scored
from cropvlm.evaluation.runner import ConfigStats

RESULTS_CSV, ANSWERS_CSV, RESULTS_MD, PLOT_PNG, SUMMARY_JSON = (
    "results.csv", "answers.csv", "results.md", "accuracy_vs_seconds.png", "summary.json")


def write_results_csv(rows: Sequence[MetricRow], path: str | Path) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow([r.reader, r.policy, r.field, r.n, f"{r.exact:.4f}", f"{r.anls:.4f}",
                             f"{r.seconds_per_answer:.4f}", f"{r.pixels_per_answer:.0f}"])
    return path


def write_answers_csv(scored: Sequence[Scored], path: str | Path) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["reader", "policy", "doc", "field", "type", "page", "gold", "prediction", "confidence",
                         "exact", "anls", "seconds", "pixels", "crop"])
        for s in scored:
            writer.writerow([s.reader, s.policy, s.doc, s.field, s.answer_type, s.page, s.gold, s.prediction,
                             f"{s.confidence:.4f}", int(s.exact), f"{s.anls:.4f}", f"{s.seconds:.4f}", s.pixels,
                             _crop(s)])
    return path


def markdown(rows: Sequence[MetricRow], stats: Sequence[ConfigStats], *, title: str = "Evaluation",
             header_lines: Sequence[str] = (), notes: Sequence[str] = ()) -> str:
    """An overall table (ALL rows with pages/s) and a per-field table (exact / ANLS)."""
    pages_per_second = {(s.reader, s.policy): s.pages_per_second for s in stats}
    overall = [r for r in rows if r.field == ALL]
    fields = list(dict.fromkeys(r.field for r in rows if r.field != ALL))
    lines = [f"### {title}", ""]
    lines += [f"{line}  " for line in header_lines]
    if header_lines:
        lines.append("")
    lines += ["| reader | policy | n | exact | ANLS | s / answer | pixels / answer | pages / s |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in overall:
        pps = pages_per_second.get((r.reader, r.policy), 0.0)
        lines.append(f"| {r.reader} | {r.policy} | {r.n} | {r.exact:.3f} | {r.anls:.3f} | "
                     f"{r.seconds_per_answer:.3f} | {_pixels(r.pixels_per_answer)} | {pps:.2f} |")
    if fields:
        by_key = {(r.reader, r.policy, r.field): r for r in rows}
        lines += ["", "Exact match / ANLS per field:", "",
                  "| reader | policy | " + " | ".join(fields) + " |",
                  "|---|---|" + "---:|" * len(fields)]
        for r in overall:
            cells = []
            for f in fields:
                cell = by_key.get((r.reader, r.policy, f))
                cells.append(f"{cell.exact:.2f} / {cell.anls:.2f}" if cell is not None else "–")
            lines.append(f"| {r.reader} | {r.policy} | " + " | ".join(cells) + " |")
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _crop(scored: Scored) -> str:
    """`x1 y1 x2 y2` in percent of the page: the crop the reader got; empty: the page alone."""
    return "" if scored.crop is None else " ".join(f"{v:.2f}" for v in scored.crop.as_tuple())


def _pixels(value: float) -> str:
    return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.0f} k"


# --- plot ----------------------------------------------------------------------------------

_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def plot_png(rows: Sequence[MetricRow], path: str | Path, title: str = "accuracy vs seconds per answer") -> Path:
    """Scatter of the ALL rows: exact match (filled) and ANLS (ring) against seconds per answer."""
    path = Path(path)
    overall = [r for r in rows if r.field == ALL]
    width, height = 960, 640
    left, right, top, bottom = 80, 330, 70, 70
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font, small = ImageFont.load_default(size=15), ImageFont.load_default(size=12)
    plot_w, plot_h = width - left - right, height - top - bottom
    x_max = _nice_ceiling(max([r.seconds_per_answer for r in overall] + [1e-3]) * 1.1)

    def to_xy(seconds: float, accuracy: float) -> tuple[float, float]:
        return left + plot_w * seconds / x_max, top + plot_h * (1 - accuracy)

    draw.text((left, 12), title, fill="black", font=font)
    for i in range(6):  # y grid: 0, 0.2, ... 1
        y = top + plot_h * i / 5
        draw.line([(left, y), (left + plot_w, y)], fill=(225, 225, 225))
        draw.text((left - 40, y - 7), f"{1 - i / 5:.1f}", fill="black", font=small)
    for i in range(6):  # x grid
        x = left + plot_w * i / 5
        draw.line([(x, top), (x, top + plot_h)], fill=(225, 225, 225))
        draw.text((x - 14, top + plot_h + 8), f"{x_max * i / 5:.3g}", fill="black", font=small)
    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    draw.text((left + plot_w / 2 - 70, height - 35), "seconds per answer", fill="black", font=font)
    draw.text((10, top - 24), "accuracy: exact match (filled), ANLS (ring)", fill="black", font=small)

    for i, r in enumerate(overall):
        color = _COLORS[i % len(_COLORS)]
        x, y = to_xy(r.seconds_per_answer, r.exact)
        draw.ellipse([x - 6, y - 6, x + 6, y + 6], fill=color, outline="black")
        xa, ya = to_xy(r.seconds_per_answer, r.anls)
        draw.ellipse([xa - 6, ya - 6, xa + 6, ya + 6], outline=color, width=2)
        ly = top + 10 + 24 * i  # legend
        draw.ellipse([left + plot_w + 20, ly, left + plot_w + 32, ly + 12], fill=color, outline="black")
        draw.text((left + plot_w + 40, ly - 2), f"{r.reader} / {r.policy}", fill="black", font=small)
    image.save(path, format="PNG")
    return path


def _nice_ceiling(value: float) -> float:
    exponent = math.floor(math.log10(value))
    for step in (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * 10**exponent >= value:
            return step * 10**exponent
    return 10 ** (exponent + 1)


def write_report(out: str | Path, rows: Sequence[MetricRow], scored: Sequence[Scored], stats: Sequence[ConfigStats],
                 markdown_text: str, summary: dict) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "results_csv": write_results_csv(rows, out / RESULTS_CSV),
        "answers_csv": write_answers_csv(scored, out / ANSWERS_CSV),
        "plot_png": plot_png(rows, out / PLOT_PNG),
    }
    (out / RESULTS_MD).write_text(markdown_text, encoding="utf-8")
    paths["results_md"] = out / RESULTS_MD
    (out / SUMMARY_JSON).write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    paths["summary_json"] = out / SUMMARY_JSON
    return paths
