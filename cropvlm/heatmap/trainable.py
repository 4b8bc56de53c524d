"""`TrainableHeatmapPolicy`: the heatmap network in torch, for SFT, GRPO and export.

It offers what `cropvlm.training` asks of a trainable policy (`training/protocol.py`):
`sample` (G boxes per request with per-choice log-probabilities and a gradient), `logprobs`
(re-score given choices, e.g. under the frozen reference for the KL term), `sft_loss`,
`propose` (greedy, for evaluation while training) and `save` (weights + ONNX + config).
A box's three choices play the role of a VLM's completion tokens: "completion ids" are
[cell, width bin, height bin], every one of them unmasked.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cropvlm.box import Box
from cropvlm.heatmap.batch import HeatmapBatch, make_batch
from cropvlm.heatmap.geometry import Geometry, decode_box, encode_box
from cropvlm.heatmap.network import HeatmapNet
from cropvlm.heatmap.onnx_policy import CONFIG_FILE, ONNX_FILE, geometry_of, greedy_choices, load_config, shifted
from cropvlm.heatmap.question import BUCKETS
from cropvlm.policies.base import CropRequest, Proposal
from cropvlm.policies.samples import PolicySamples

WEIGHTS_FILE = "weights.pt"


class TrainableHeatmapPolicy:
    def __init__(self, net: HeatmapNet | None = None, geometry: Geometry | None = None,
                 buckets: int = BUCKETS, name: str = "heatmap", extra_config: dict | None = None) -> None:
        self.geometry = geometry or Geometry()
        self.buckets = buckets
        self.net = net or HeatmapNet(buckets=buckets, size_bins=self.geometry.size_bins)
        self.name = name
        self.extra_config = dict(extra_config or {})
        self.version = f"heatmap:{name}(training)"

    # --- persistence --------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | Path) -> TrainableHeatmapPolicy:
        folder = Path(folder)
        config = load_config(folder)
        net = HeatmapNet(buckets=config["buckets"], size_bins=config["geometry"]["size_bins"], **config.get("network", {}))
        net.load_state_dict(torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        extra = {k: v for k, v in config.items() if k not in {"geometry", "buckets", "network", "name"}}
        return cls(net, geometry_of(config), config["buckets"], config.get("name", folder.name), extra)

    def load_weights(self, folder: str | Path) -> None:
        self.net.load_state_dict(torch.load(Path(folder) / WEIGHTS_FILE, map_location="cpu", weights_only=True))

    def config(self) -> dict:
        return {"name": self.name, "geometry": asdict(self.geometry), "buckets": self.buckets,
                "network": dict(self.net.hparams), **self.extra_config}

    def save(self, folder: str | Path, *, onnx: bool = True) -> Path:
        """weights.pt (to train on), policy.onnx (to serve) and config.json."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), folder / WEIGHTS_FILE)
        if onnx:
            self.export_onnx(folder / ONNX_FILE)
        (folder / CONFIG_FILE).write_text(json.dumps(self.config(), indent=2, sort_keys=True) + "\n")
        return folder

    def export_onnx(self, path: Path) -> None:
        size = self.geometry.input_size
        example = (torch.zeros(2, 3, size, size), torch.zeros(3, self.buckets), torch.tensor([0, 1, 1]))
        was_training = self.net.training
        self.net.eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(
                self.net, example, str(path), dynamo=False, opset_version=17,
                input_names=["images", "questions", "page_index"], output_names=["logits"],
                dynamic_axes={"images": {0: "pages"}, "questions": {0: "requests"},
                              "page_index": {0: "requests"}, "logits": {0: "requests"}},
            )
        self.net.train(was_training)

    def frozen_copy(self) -> TrainableHeatmapPolicy:
        """The KL reference: same weights, no gradients."""
        net = copy.deepcopy(self.net).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        return TrainableHeatmapPolicy(net, self.geometry, self.buckets, self.name, self.extra_config)

    def parameters(self):
        return [p for p in self.net.parameters() if p.requires_grad]

    # --- forward ------------------------------------------------------------------------
    def _forward(self, requests: Sequence[CropRequest], grad: bool) -> tuple[torch.Tensor, torch.Tensor, HeatmapBatch]:
        batch = make_batch(requests, self.geometry, self.buckets)
        with torch.set_grad_enabled(grad):
            logits = self.net(torch.from_numpy(batch.images), torch.from_numpy(batch.questions),
                              torch.from_numpy(batch.page_index))
        flat = logits.flatten(2)  # [Q, 1 + 2K, G*G]
        return flat, torch.from_numpy(batch.masks), batch

    def _choice_logprobs(self, flat, masks, ids: torch.Tensor, temperature: float) -> torch.Tensor:
        """[N, 3] log-probs of (cell, width bin, height bin) at `temperature`."""
        k = self.geometry.size_bins
        centre = flat[:, 0].masked_fill(~masks, float("-inf")) / temperature
        lp_cell = F.log_softmax(centre, dim=1).gather(1, ids[:, :1])
        at_cell = flat.gather(2, ids[:, 0].view(-1, 1, 1).expand(-1, flat.shape[1], 1)).squeeze(2)
        lp_w = F.log_softmax(at_cell[:, 1 : 1 + k] / temperature, dim=1).gather(1, ids[:, 1:2])
        lp_h = F.log_softmax(at_cell[:, 1 + k :] / temperature, dim=1).gather(1, ids[:, 2:3])
        return torch.cat([lp_cell, lp_w, lp_h], dim=1)

    # --- the trainable-policy protocol ----------------------------------------------------
    def sample(self, requests: Sequence[CropRequest], num_samples: int = 6, temperature: float = 0.8,
               generator: torch.Generator | None = None) -> PolicySamples:
        if num_samples < 1 or temperature <= 0:
            raise ValueError("num_samples must be >= 1 and temperature > 0")
        groups = [g for g in range(len(requests)) for _ in range(num_samples)]
        flat, masks, batch = self._forward(requests, grad=True)
        k = self.geometry.size_bins
        rows = torch.as_tensor(groups)
        with torch.no_grad():
            centre = flat[:, 0].masked_fill(~masks, float("-inf")) / temperature
            cells = torch.multinomial(F.softmax(centre, dim=1), num_samples, replacement=True, generator=generator)
            cells = cells.reshape(-1)  # [Q * G], request-major
            at_cell = flat[rows, :, cells]  # [N, 1 + 2K]
            widths = torch.multinomial(F.softmax(at_cell[:, 1 : 1 + k] / temperature, 1), 1, generator=generator)
            heights = torch.multinomial(F.softmax(at_cell[:, 1 + k :] / temperature, 1), 1, generator=generator)
        ids = torch.cat([cells[:, None], widths, heights], dim=1)
        token_lp = self._choice_logprobs(flat[rows], masks[rows], ids, temperature)
        # the judge sees the box as it will be served (config "size_shift"); the log-probs
        # stay those of the sampled choices, which is what the policy is updated on
        served = self._served(ids.tolist())
        proposals = [self._proposal(served[i], batch.placements[g]) for i, g in enumerate(groups)]
        return PolicySamples(
            texts=[p.text for p in proposals], proposals=proposals, group=groups, completion_ids=ids,
            completion_mask=torch.ones_like(ids, dtype=torch.bool), token_logprobs=token_lp,
            logprobs=token_lp.sum(1),
        )

    def logprobs(self, requests: Sequence[CropRequest], completion_ids: torch.Tensor,
                 completion_mask: torch.Tensor | None = None, *, temperature: float = 1.0,
                 grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-choice log-probs [N, 3] of given choices; requests[i] is row i's request."""
        firsts = list({id(r): r for r in requests}.values())  # each distinct request once, in order
        row_of = {id(r): i for i, r in enumerate(firsts)}
        flat, masks, _ = self._forward(firsts, grad=grad)
        rows = torch.as_tensor([row_of[id(r)] for r in requests])
        with torch.set_grad_enabled(grad):
            lp = self._choice_logprobs(flat[rows], masks[rows], completion_ids, temperature)
        mask = completion_mask if completion_mask is not None else torch.ones_like(completion_ids, dtype=torch.bool)
        return lp, mask

    def targets(self, requests: Sequence[CropRequest], boxes: Sequence[Box]) -> torch.Tensor:
        """[N, 3] choices closest to `boxes` (SFT targets)."""
        batch = make_batch(requests, self.geometry, self.buckets)
        return torch.as_tensor([encode_box(b, p, self.geometry) for b, p in zip(boxes, batch.placements)])

    def sft_loss(self, requests: Sequence[CropRequest], boxes: Sequence[Box], *, sigma_cells: float = 1.0,
                 bin_sigma: float = 0.75) -> torch.Tensor:
        """Cross-entropy to the target box with soft targets: a Gaussian over neighbouring
        cells (one cell off is nearly as good a crop) and over neighbouring size bins."""
        flat, masks, batch = self._forward(requests, grad=True)
        ids = torch.as_tensor([encode_box(b, p, self.geometry) for b, p in zip(boxes, batch.placements)])
        g, k = self.geometry.grid, self.geometry.size_bins
        rows, cols = torch.div(ids[:, 0], g, rounding_mode="floor"), ids[:, 0] % g
        yy, xx = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
        dist2 = (yy.reshape(1, -1) - rows[:, None]) ** 2 + (xx.reshape(1, -1) - cols[:, None]) ** 2
        soft_cell = torch.exp(-dist2 / (2 * sigma_cells**2)).masked_fill(~masks, 0.0)
        soft_cell = soft_cell / soft_cell.sum(1, keepdim=True)
        centre = flat[:, 0].masked_fill(~masks, -1e4)
        loss = -(soft_cell * F.log_softmax(centre, 1)).sum(1)
        at_cell = flat.gather(2, ids[:, 0].view(-1, 1, 1).expand(-1, flat.shape[1], 1)).squeeze(2)
        bins = torch.arange(k)
        for offset, target in ((1, ids[:, 1]), (1 + k, ids[:, 2])):
            soft = torch.exp(-((bins[None, :] - target[:, None]) ** 2) / (2 * bin_sigma**2))
            soft = soft / soft.sum(1, keepdim=True)
            loss = loss - (soft * F.log_softmax(at_cell[:, offset : offset + k], 1)).sum(1)
        return loss.mean()

    @torch.no_grad()
    def propose(self, requests: Sequence[CropRequest]) -> list[Proposal]:
        was_training = self.net.training
        self.net.eval()
        try:
            flat, masks, batch = self._forward(requests, grad=False)
        finally:
            self.net.train(was_training)
        logits = flat.reshape(flat.shape[0], flat.shape[1], self.geometry.grid, self.geometry.grid).numpy()
        choices = self._served(greedy_choices(logits, batch.masks, self.geometry.size_bins))
        return [self._proposal(np.asarray(c), p) for c, p in zip(choices, batch.placements)]

    def _served(self, choices) -> list[tuple[int, int, int]]:
        """Choices with the served policy's margin (config "size_shift"), so training judges
        and evaluates boxes as `HeatmapPolicy` will serve them."""
        return shifted([tuple(c) for c in choices], int(self.extra_config.get("size_shift", 0)),
                       self.geometry.size_bins)

    def _proposal(self, ids, placement) -> Proposal:
        box = decode_box(int(ids[0]), int(ids[1]), int(ids[2]), placement, self.geometry)
        return Proposal(box=box, text=box.format())
