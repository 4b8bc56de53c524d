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

from cropvlm.confidence import at_threshold
from cropvlm.evaluation.metrics import ALL, CSV_COLUMNS, ConfidenceRow, MetricRow, Scored
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


def answers_table(scored: Sequence[Scored]) -> list[dict[str, str]]:
    """One row per (document, field): the gold answer, then each configuration's answer marked
    right or wrong, with its confidence, so a person can scan where the configurations differ."""
    configs = list(dict.fromkeys(f"{s.reader} / {s.policy}" for s in scored))
    table: dict[tuple[str, str], dict[str, str]] = {}
    for s in scored:
        row = table.setdefault((s.doc, s.field), {"document": s.doc, "field": s.field, "gold": s.gold,
                                                   **dict.fromkeys(configs, "")})
        mark = "error" if s.error else ("right" if s.exact else "WRONG")
        row[f"{s.reader} / {s.policy}"] = f"{mark}: {s.prediction} ({s.confidence:.2f})"
    return list(table.values())


REVIEW_THRESHOLDS = (0.5, 0.7, 0.8, 0.9)  # columns of the confidence table


def markdown(rows: Sequence[MetricRow], stats: Sequence[ConfigStats], *, title: str = "Evaluation",
             header_lines: Sequence[str] = (), notes: Sequence[str] = (),
             confidence: Sequence[ConfidenceRow] = ()) -> str:
    """An overall table (ALL rows with pages/s) and a per-field table, one row per field and
    configuration (narrow, whatever the number of fields). Reader and policy specs are code
    spans, so a renderer does not take `oracle@0.04` for an e-mail address."""
    pages_per_second = {(s.reader, s.policy): s.pages_per_second for s in stats}
    overall = [r for r in rows if r.field == ALL]
    lines = [f"### {title}", ""]
    lines += [f"{line}  " for line in header_lines]
    if header_lines:
        lines.append("")
    lines += ["| reader | policy | n | exact | ANLS | s / answer | pixels / answer | pages / s |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in overall:
        pps = pages_per_second.get((r.reader, r.policy), 0.0)
        lines.append(f"| {_code(r.reader)} | {_code(r.policy)} | {r.n} | {r.exact:.3f} | {r.anls:.3f} | "
                     f"{r.seconds_per_answer:.3f} | {_pixels(r.pixels_per_answer)} | {pps:.2f} |")
    per_field = sorted((r for r in rows if r.field != ALL), key=lambda r: (_first_seen(rows, r.field), -r.exact))
    if per_field:
        lines += ["", "Per field (best first):", "",
                  "| field | reader | policy | n | exact | ANLS |",
                  "|---|---|---|---:|---:|---:|"]
        lines += [f"| {r.field} | {_code(r.reader)} | {_code(r.policy)} | {r.n} | {r.exact:.3f} | {r.anls:.3f} |"
                  for r in per_field]
    if confidence:
        lines += ["", "Confidence: calibration error, and at each review threshold the share of answers at or "
                      "above it and the exact match among them (summary.json has the whole curve):", "",
                  "| reader | policy | calibration error | "
                  + " | ".join(f">= {t:g}: share, exact" for t in REVIEW_THRESHOLDS) + " |",
                  "|---|---|---:|" + "---:|" * len(REVIEW_THRESHOLDS)]
        for c in confidence:
            points = [at_threshold(c.coverage, t) for t in REVIEW_THRESHOLDS]
            lines.append(f"| {_code(c.reader)} | {_code(c.policy)} | {c.calibration_error:.3f} | "
                         + " | ".join(f"{p.share:.0%}, {p.exact:.3f}" for p in points) + " |")
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _code(spec: str) -> str:
    return f"`{spec}`"


def _first_seen(rows: Sequence[MetricRow], field: str) -> int:
    return next(i for i, r in enumerate(rows) if r.field == field)


def _crop(scored: Scored) -> str:
    """`x1 y1 x2 y2` in percent of the page: the crop the reader got; empty: the page alone."""
    return "" if scored.crop is None else " ".join(f"{v:.2f}" for v in scored.crop.as_tuple())


def _pixels(value: float) -> str:
    return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.0f} k"


# --- plot ----------------------------------------------------------------------------------

_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def plot_text(rows: Sequence[MetricRow], dataset: str | None = None,
              documents: int | None = None) -> tuple[str, str, list[str]]:
    """The plot's title (dataset, documents, answers per configuration), its subtitle (axes, and
    the reader when there is one) and the legend, one short name per configuration."""
    overall = [r for r in rows if r.field == ALL]
    ns = sorted({r.n for r in overall})
    n = "" if not ns else f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]}–{ns[-1]}"
    about = ", ".join(part for part in (f"{documents} documents" if documents is not None else "",
                                        f"{n} answers per configuration" if n else "") if part)
    title = f"{dataset or 'Evaluation'}" + (f" ({about})" if about else "")
    readers = list(dict.fromkeys(r.reader for r in overall))
    subtitle = "accuracy vs seconds per answer: exact match (filled), ANLS (ring)"
    if len(readers) == 1:
        subtitle += f"; reader {readers[0]}"
        legend = [r.policy for r in overall]
    else:
        legend = [f"{r.reader} / {r.policy}" for r in overall]
    return title, subtitle, legend


def plot_png(rows: Sequence[MetricRow], path: str | Path, dataset: str | None = None,
             documents: int | None = None) -> Path:
    """Scatter of the ALL rows: exact match (filled) and ANLS (ring) against seconds per answer;
    the legend in columns under the axes, as many rows as it needs, so no name is cut."""
    path = Path(path)
    overall = [r for r in rows if r.field == ALL]
    title, subtitle, legend = plot_text(rows, dataset, documents)
    font, small = ImageFont.load_default(size=15), ImageFont.load_default(size=12)
    width, left, right, top = 960, 70, 40, 76
    plot_w, plot_h = width - left - right, 440
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    entry_w = max([measure.textlength(name, font=small) for name in legend] + [0]) + 40
    columns = max(1, min(len(legend), int((width - 2 * left) // entry_w)))
    legend_top = top + plot_h + 60
    height = legend_top + 22 * math.ceil(len(legend) / columns) + 16
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    x_max = _nice_ceiling(max([r.seconds_per_answer for r in overall] + [1e-3]) * 1.1)

    def to_xy(seconds: float, accuracy: float) -> tuple[float, float]:
        return left + plot_w * seconds / x_max, top + plot_h * (1 - accuracy)

    draw.text((10, 10), _fit(measure, title, font, width - 20), fill="black", font=font)
    draw.text((10, 34), _fit(measure, subtitle, small, width - 20), fill="black", font=small)
    for i in range(6):  # y grid: 0, 0.2, ... 1
        y = top + plot_h * i / 5
        draw.line([(left, y), (left + plot_w, y)], fill=(225, 225, 225))
        draw.text((left - 34, y - 7), f"{1 - i / 5:.1f}", fill="black", font=small)
    for i in range(6):  # x grid
        x = left + plot_w * i / 5
        draw.line([(x, top), (x, top + plot_h)], fill=(225, 225, 225))
        draw.text((x - 14, top + plot_h + 8), f"{x_max * i / 5:.3g}", fill="black", font=small)
    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    draw.text((left + plot_w / 2 - 70, top + plot_h + 28), "seconds per answer", fill="black", font=font)

    for i, (r, name) in enumerate(zip(overall, legend, strict=True)):
        color = _COLORS[i % len(_COLORS)]
        x, y = to_xy(r.seconds_per_answer, r.exact)
        draw.ellipse([x - 6, y - 6, x + 6, y + 6], fill=color, outline="black")
        xa, ya = to_xy(r.seconds_per_answer, r.anls)
        draw.ellipse([xa - 6, ya - 6, xa + 6, ya + 6], outline=color, width=2)
        lx, ly = left + entry_w * (i % columns), legend_top + 22 * (i // columns)
        draw.ellipse([lx, ly + 1, lx + 12, ly + 13], fill=color, outline="black")
        draw.text((lx + 20, ly), _fit(measure, name, small, width - lx - 30), fill="black", font=small)
    image.save(path, format="PNG")
    return path


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: float) -> str:
    """`text`, shortened in the middle with `…` until it is at most `width` pixels wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    keep = len(text)
    while keep > 4 and draw.textlength(text[:keep // 2] + "…" + text[len(text) - keep // 2:], font=font) > width:
        keep -= 2
    return text[:keep // 2] + "…" + text[len(text) - keep // 2:]


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
        "plot_png": plot_png(rows, out / PLOT_PNG, summary.get("source"), summary.get("documents")),
    }
    (out / RESULTS_MD).write_text(markdown_text, encoding="utf-8")
    paths["results_md"] = out / RESULTS_MD
    (out / SUMMARY_JSON).write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    paths["summary_json"] = out / SUMMARY_JSON
    return paths
