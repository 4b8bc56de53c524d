"""The training report: reward and loss curves as a PNG (Pillow only) and a markdown summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


def moving_average(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def curves_png(sft_curve: Sequence[Mapping], grpo_curve: Sequence[Mapping], path: str | Path,
               title: str = "training curves") -> Path:
    """Two panels: SFT loss per step, GRPO mean reward (and the answer reward, `exact` or
    `accuracy`, whichever was weighted) per step, with moving averages over a tenth of each phase."""
    path = Path(path)
    named = {name for p in grpo_curve for name in p.get("components", {})}
    answer_reward = "exact" if "exact" in named else "accuracy"
    width, height = 1000, 420
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font, small = ImageFont.load_default(size=15), ImageFont.load_default(size=12)
    draw.text((20, 10), title, fill="black", font=font)
    panels = [
        ("SFT loss", [p["loss"] for p in sft_curve], None),
        (f"GRPO reward (blue), {answer_reward} (orange)", [p["reward"] for p in grpo_curve],
         [p.get("components", {}).get(answer_reward) for p in grpo_curve]),
    ]
    for index, (name, values, second) in enumerate(panels):
        left, top, w, h = 60 + index * 490, 50, 410, 320
        draw.rectangle([left, top, left + w, top + h], outline="black")
        draw.text((left, top + h + 22), name, fill="black", font=small)
        series = [values] + ([[v for v in second if v is not None]] if second else [])
        points = [v for s in series for v in s]
        if not points:
            draw.text((left + 20, top + h / 2), "no steps", fill="black", font=small)
            continue
        low, high = min(points + [0.0]), max(points)
        high = high if high > low else low + 1
        for i in range(5):
            y = top + h * i / 4
            draw.line([(left, y), (left + w, y)], fill=(230, 230, 230))
            draw.text((left - 50, y - 6), f"{high - (high - low) * i / 4:.3g}", fill="black", font=small)
        draw.text((left + w - 60, top + h + 6), f"{len(values)} steps", fill="black", font=small)
        for s, colour in zip(series, [(31, 119, 180), (255, 127, 14)]):
            if len(s) < 2:
                continue
            smooth = moving_average(s, max(1, len(s) // 10))
            xy = [(left + w * i / (len(s) - 1), top + h * (1 - (v - low) / (high - low))) for i, v in enumerate(smooth)]
            raw = [(left + w * i / (len(s) - 1), top + h * (1 - (v - low) / (high - low))) for i, v in enumerate(s)]
            draw.line(raw, fill=tuple(min(255, c + 150) for c in colour), width=1)
            draw.line(xy, fill=colour, width=3)
    image.save(path, format="PNG")
    return path


def summary_markdown(title: str, heldout: Mapping[str, Mapping[str, float]], facts: Mapping[str, object]) -> str:
    lines = [f"# {title}", "", "| policy | n | exact | ANLS |", "|---|---|---|---|"]
    for name, m in heldout.items():
        lines.append(f"| {name} | {m['n']} | {m['exact']:.3f} | {m['anls']:.3f} |")
    lines += ["", *(f"- {k}: {v}" for k, v in facts.items()), ""]
    return "\n".join(lines)
