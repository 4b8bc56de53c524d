"""Warm-start (SFT) targets: gold value boxes enlarged the paper's way.

A gold box around a value is often a sliver of the page; as a crop target it would leave
the policy no margin for error. The paper splits the boxes of a dataset into quintiles of
relative area (box area / page area) and multiplies the area of each box by x45, x10, x4,
x2 or x1, smallest quintile first, keeping the centre and clamping into the page.
"""

from __future__ import annotations

from collections.abc import Sequence

from cropvlm.box import Box

AREA_FACTORS = (45.0, 10.0, 4.0, 2.0, 1.0)  # smallest quintile first


def quintile_edges(areas: Sequence[float]) -> tuple[float, float, float, float]:
    """The four relative areas that split `areas` into five equally populated groups."""
    if not areas:
        raise ValueError("no box areas to split into quintiles")
    ordered = sorted(areas)
    last = len(ordered) - 1
    return tuple(ordered[round(last * q / 5)] for q in (1, 2, 3, 4))  # type: ignore[return-value]


def enlarge_box(box: Box, edges: Sequence[float]) -> Box:
    """`box` with its area multiplied by its quintile's factor (same centre, clamped)."""
    quintile = sum(box.area > edge for edge in edges)  # 0 = smallest fifth
    factor = AREA_FACTORS[quintile]
    return box if factor == 1.0 else box.scaled(factor)
