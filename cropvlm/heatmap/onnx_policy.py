"""`HeatmapPolicy`: the default crop policy at inference, on ONNX Runtime (no torch).

A policy folder holds `policy.onnx` and `config.json` (geometry, question buckets, how it
was trained). `propose` is greedy: the most likely centre cell on the page, then the most
likely width and height bins at that cell. The version is the folder name plus a hash of
the weights, so each answer's provenance names the exact model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cropvlm.errors import PolicyError
from cropvlm.heatmap.batch import make_batch
from cropvlm.heatmap.geometry import Geometry, decode_box
from cropvlm.policies.base import CropRequest, Proposal

ONNX_FILE, CONFIG_FILE = "policy.onnx", "config.json"


def load_config(folder: Path) -> dict:
    try:
        return json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise PolicyError(f"heatmap policy {folder}: cannot read {CONFIG_FILE}: {exc}") from exc


def geometry_of(config: dict) -> Geometry:
    return Geometry(**config["geometry"])


def greedy_choices(logits: np.ndarray, masks: np.ndarray, size_bins: int) -> list[tuple[int, int, int]]:
    """[Q, 1 + 2K, G, G] logits -> (cell, width bin, height bin) per question."""
    q = logits.shape[0]
    flat = logits.reshape(q, logits.shape[1], -1)
    centre = np.where(masks, flat[:, 0], -np.inf)
    cells = centre.argmax(axis=1)
    at_cell = flat[np.arange(q), :, cells]  # [Q, 1 + 2K]
    widths = at_cell[:, 1 : 1 + size_bins].argmax(axis=1)
    heights = at_cell[:, 1 + size_bins :].argmax(axis=1)
    return [(int(c), int(w), int(h)) for c, w, h in zip(cells, widths, heights)]


def shifted(choices: list[tuple[int, int, int]], shift: int, size_bins: int) -> list[tuple[int, int, int]]:
    """`shift` size bins added to each choice's width and height bins, kept in range."""
    last = size_bins - 1
    return [(cell, min(max(w + shift, 0), last), min(max(h + shift, 0), last)) for cell, w, h in choices]


class HeatmapPolicy:
    """Policy protocol over an exported heatmap network; see the module docstring."""

    def __init__(self, folder: str | Path, *, batch_pages: int = 8, threads: int | None = None,
                 size_shift: int | None = None) -> None:
        import onnxruntime as ort  # a runtime dependency already (RapidOCR)

        self.folder = Path(folder)
        self.config = load_config(self.folder)
        self.geometry = geometry_of(self.config)
        self.buckets = int(self.config["buckets"])
        # Size bins added to the chosen width and height (each bin ~1.3x the side): a margin for
        # the coarse centre grid, so names and addresses are not cut. A setting of the folder
        # (config.json, written by the retrain flow's `size_shift`) or of the caller.
        self.size_shift = int(self.config.get("size_shift", 0) if size_shift is None else size_shift)
        self.batch_pages = batch_pages
        model = self.folder / ONNX_FILE
        try:
            weights = model.read_bytes()
        except OSError as exc:
            raise PolicyError(f"heatmap policy {self.folder}: cannot read {ONNX_FILE}: {exc}") from exc
        options = ort.SessionOptions()
        options.enable_mem_pattern = False  # pages vary per batch: cached patterns only grow RSS
        if threads:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(weights, options, providers=["CPUExecutionProvider"])
        name = self.config.get("name") or self.folder.name
        self.version = f"heatmap:{name}#{hashlib.sha256(weights).hexdigest()[:12]}"
        if self.size_shift:  # other boxes from the same weights: another version
            self.version += f"+size{self.size_shift:+d}"

    def logits(self, requests: Sequence[CropRequest]):
        batch = make_batch(requests, self.geometry, self.buckets)
        (out,) = self._session.run(None, {"images": batch.images, "questions": batch.questions,
                                          "page_index": batch.page_index})
        return out, batch

    def propose(self, requests: Sequence[CropRequest]) -> list[Proposal]:
        proposals: list[Proposal] = []
        for chunk in _page_chunks(requests, self.batch_pages):
            logits, batch = self.logits(chunk)
            choices = shifted(greedy_choices(logits, batch.masks, self.geometry.size_bins), self.size_shift,
                              self.geometry.size_bins)
            for choice, placement in zip(choices, batch.placements):
                box = decode_box(*choice, placement, self.geometry)
                proposals.append(Proposal(box=box, text=box.format()))
        return proposals


def _page_chunks(requests: Sequence[CropRequest], pages_per_chunk: int):
    """Consecutive runs of requests covering at most `pages_per_chunk` distinct pages."""
    chunk: list[CropRequest] = []
    pages: set[int] = set()
    for request in requests:
        if id(request.page) not in pages and len(pages) == pages_per_chunk:
            yield chunk
            chunk, pages = [], set()
        pages.add(id(request.page))
        chunk.append(request)
    if chunk:
        yield chunk
