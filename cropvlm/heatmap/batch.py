"""Requests -> network inputs: each distinct page letterboxed once, one row per question."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cropvlm.heatmap.geometry import Geometry, Letterbox, cell_mask, letterbox
from cropvlm.heatmap.question import question_features
from cropvlm.policies.base import CropRequest


@dataclass
class HeatmapBatch:
    images: np.ndarray  # [P, 3, S, S] float32
    questions: np.ndarray  # [Q, BUCKETS] float32
    page_index: np.ndarray  # [Q] int64: the page of each question
    placements: list[Letterbox]  # [Q]
    masks: np.ndarray  # [Q, G * G] bool: cells on the page


def make_batch(requests: Sequence[CropRequest], geometry: Geometry, buckets: int) -> HeatmapBatch:
    pages: dict[int, int] = {}  # id(page image) -> row; requests of one page share the object
    images, placements, page_index = [], [], []
    page_placement: list[Letterbox] = []
    for request in requests:
        key = id(request.page)
        if key not in pages:
            canvas, placement = letterbox(request.page, geometry)
            pages[key] = len(images)
            images.append(canvas)
            page_placement.append(placement)
        page_index.append(pages[key])
        placements.append(page_placement[pages[key]])
    return HeatmapBatch(
        images=np.stack(images) if images else np.zeros((0, 3, geometry.input_size, geometry.input_size), np.float32),
        questions=np.stack([question_features(r.question, buckets) for r in requests]) if requests
        else np.zeros((0, buckets), np.float32),
        page_index=np.asarray(page_index, dtype=np.int64),
        placements=placements,
        masks=np.stack([cell_mask(p, geometry) for p in placements]) if placements
        else np.zeros((0, geometry.grid ** 2), bool),
    )
