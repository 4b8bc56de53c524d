"""What the trainers ask of a policy backend (the heatmap policy and `HfPolicy` both offer it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from cropvlm.box import Box
from cropvlm.policies.base import CropRequest, Proposal
from cropvlm.policies.samples import PolicySamples


class TrainablePolicy(Protocol):
    version: str

    def sample(self, requests: Sequence[CropRequest], num_samples: int, temperature: float) -> PolicySamples:
        """`num_samples` boxes per request with log-probs that carry a gradient."""

    def logprobs(self, requests: Sequence[CropRequest], completion_ids: torch.Tensor,
                 completion_mask: torch.Tensor | None = None, *, temperature: float = 1.0,
                 grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probs [N, T] and mask of given completions; requests[i] is row i's."""

    def sft_loss(self, requests: Sequence[CropRequest], boxes: Sequence[Box]) -> torch.Tensor:
        """Mean loss of emitting `boxes` for `requests` (warm start)."""

    def propose(self, requests: Sequence[CropRequest]) -> list[Proposal]:
        """Greedy boxes (evaluation while training)."""

    def parameters(self) -> list[torch.nn.Parameter]:
        """The weights to train."""

    def frozen_copy(self) -> TrainablePolicy:
        """The KL reference: the same weights, frozen."""

    def save(self, folder, *, onnx: bool = True):
        """Write what `load_weights` reads back (and, for serving, the exported model)."""

    def load_weights(self, folder) -> None:
        """Restore weights written by `save` (resuming from a checkpoint)."""
