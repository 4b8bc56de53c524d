"""`PolicySamples`: what a trainable policy returns when it samples boxes for GRPO."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cropvlm.policies.base import Proposal


@dataclass
class PolicySamples:
    """`num_samples` completions per request, grouped: rows [g * k, (g + 1) * k) are request g's.

    A "completion" is whatever discrete choices the policy made: a VLM's tokens, or the
    heatmap policy's (cell, width bin, height bin). The loss only needs their log-probs.
    """

    texts: list[str]
    proposals: list[Proposal]  # parsed boxes (invalid -> full page, valid=False)
    group: list[int]  # request index of each row
    completion_ids: torch.Tensor  # [N, T] sampled ids (pad after the stop token)
    completion_mask: torch.Tensor  # [N, T] bool: ids that count (up to and including the stop)
    token_logprobs: torch.Tensor  # [N, T] temperature-scaled log-probs, with grad; 0 where masked
    logprobs: torch.Tensor  # [N] sum of token_logprobs: the sequence log-probability, with grad
