"""GRPO (group relative policy optimisation), one implementation for every policy backend.

For each (page, question) the policy samples G boxes; a reward function scores each box
by what the frozen reader answers from its crop; advantages compare each box with the
others of its group (no value model). The loss per completion token t of sample i:

    ratio = exp(logp - logp_old);  A = advantage of sample i
    pg    = -min(ratio * A, clip(ratio, 1 - eps, 1 + eps_high) * A)
    kl    = exp(ref - logp) - (ref - logp) - 1        (k3 estimator, to the frozen reference)
    loss  = pg + beta * kl

Settings follow the paper (CropVLM, arXiv 2511.19820): group 6, temperature 0.8, beta 0.01,
max grad norm 0.1. `scale_rewards` picks the advantage: "none" = r - mean (Dr. GRPO, the
paper's code) or "group" = (r - mean) / std (the paper's text). `loss_type` "dr_grpo" sums
token losses and divides by a constant (N x longest completion), "grpo" averages per
sequence first; the two differ only for variable-length completions (VLM tokens).

Why not TRL's GRPOTrainer: it is built around a causal LM's `generate` and a text dataset,
so it cannot drive the heatmap policy (a box is three categorical choices, not tokens), and
its vision path does not pass a *crop* of the sampled box to a reward model; one small loop
over the `TrainablePolicy` protocol drives both backends, and TRL would be one more large
dependency for the GPU image (which does not ship it). The loss terms and settings mirror
TRL's (beta, epsilon, scale_rewards, loss_type, num_iterations) so results compare.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from cropvlm.policies.base import CropRequest
from cropvlm.policies.samples import PolicySamples
from cropvlm.training.protocol import TrainablePolicy

SCALE_REWARDS = ("none", "group")
LOSS_TYPES = ("dr_grpo", "grpo")


@dataclass(frozen=True)
class GrpoConfig:
    num_generations: int = 6
    temperature: float = 0.8
    beta: float = 0.01
    epsilon: float = 0.2
    epsilon_high: float | None = None  # None = epsilon (symmetric clipping)
    scale_rewards: str = "none"
    loss_type: str = "dr_grpo"
    num_iterations: int = 1  # gradient steps per batch of samples (ratio != 1 from the 2nd on)
    learning_rate: float = 5e-6
    warmup_ratio: float = 0.03
    max_grad_norm: float = 0.1
    prompts_per_step: int = 16
    steps: int = 100
    reward_weights: dict[str, float] = field(default_factory=lambda: {"accuracy": 1.0, "format": 1.0})

    def __post_init__(self) -> None:
        if self.scale_rewards not in SCALE_REWARDS:
            raise ValueError(f"scale_rewards must be one of {SCALE_REWARDS}, got {self.scale_rewards!r}")
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}")
        if self.num_generations < 2:
            raise ValueError("num_generations must be >= 2: advantages compare samples of a group")
        if self.temperature <= 0 or self.beta < 0 or self.epsilon <= 0 or self.max_grad_norm <= 0:
            raise ValueError("temperature, epsilon and max_grad_norm must be > 0 and beta >= 0")
        if self.num_iterations < 1 or self.steps < 1 or self.prompts_per_step < 1:
            raise ValueError("num_iterations, steps and prompts_per_step must be >= 1")


@dataclass
class RewardBatch:
    total: list[float]  # weighted sum per sample
    components: dict[str, list[float | None]]  # each named reward per sample (None = n/a)


RewardFn = Callable[[PolicySamples], RewardBatch]  # samples.group maps each sample to its request


def group_advantages(rewards: torch.Tensor, group_size: int, scale_rewards: str = "none") -> torch.Tensor:
    """r - mean of its group; divided by the group's std (+1e-4) when scale_rewards="group"."""
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    grouped = rewards.view(-1, group_size)
    advantages = grouped - grouped.mean(dim=1, keepdim=True)
    if scale_rewards == "group":
        advantages = advantages / (grouped.std(dim=1, keepdim=True) + 1e-4)
    return advantages.reshape(-1)


def grpo_loss(token_logprobs: torch.Tensor, old_logprobs: torch.Tensor, ref_logprobs: torch.Tensor | None,
              mask: torch.Tensor, advantages: torch.Tensor, config: GrpoConfig) -> tuple[torch.Tensor, dict]:
    """The clipped surrogate + beta * k3 KL, reduced by `config.loss_type`. All [N, T] but advantages [N]."""
    mask = mask.to(token_logprobs.dtype)
    ratio = torch.exp(token_logprobs - old_logprobs)
    high = config.epsilon_high if config.epsilon_high is not None else config.epsilon
    adv = advantages[:, None]
    unclipped, clipped = ratio * adv, torch.clamp(ratio, 1 - config.epsilon, 1 + high) * adv
    per_token = -torch.min(unclipped, clipped)
    kl = torch.zeros_like(per_token)
    if ref_logprobs is not None and config.beta > 0:
        delta = ref_logprobs - token_logprobs
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + config.beta * kl
    if config.loss_type == "dr_grpo":
        loss = (per_token * mask).sum() / (mask.shape[0] * mask.shape[1])
    else:
        loss = ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
    tokens = mask.sum().clamp(min=1)
    stats = {
        "kl": float((kl.detach() * mask).sum() / tokens),
        "clip_fraction": float(((unclipped != clipped).to(mask.dtype) * mask).sum() / tokens),
    }
    return loss, stats


def lr_factor(step: int, total: int, warmup_ratio: float) -> float:
    """Linear warm-up then cosine decay to 0 (the paper's schedule)."""
    warmup = max(1, math.ceil(total * warmup_ratio))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class StepStats:
    step: int
    reward: float  # mean total reward of the samples
    reward_std: float  # mean within-group std: 0 means nothing to learn from
    components: dict[str, float]  # mean of each reward over samples where it applies
    loss: float
    kl: float
    clip_fraction: float
    grad_norm: float
    lr: float


def grpo_step(policy: TrainablePolicy, reference: TrainablePolicy | None, optimizer: torch.optim.Optimizer,
              requests: Sequence[CropRequest], reward_fn: RewardFn, config: GrpoConfig, step: int) -> StepStats:
    """Sample, judge, and take `num_iterations` gradient steps on one batch of requests."""
    lr = config.learning_rate * lr_factor(step, config.steps, config.warmup_ratio)
    for group in optimizer.param_groups:
        group["lr"] = lr
    samples = policy.sample(requests, config.num_generations, config.temperature)
    rewards = reward_fn(samples)
    totals = torch.tensor(rewards.total, dtype=torch.float32)
    advantages = group_advantages(totals, config.num_generations, config.scale_rewards)
    advantages = advantages.to(samples.token_logprobs.device)
    repeated = [requests[g] for g in samples.group]
    old = samples.token_logprobs.detach()
    ref = None
    if reference is not None and config.beta > 0:
        ref, _ = reference.logprobs(repeated, samples.completion_ids, samples.completion_mask,
                                    temperature=config.temperature, grad=False)
        ref = ref.to(old.device)
    params = policy.parameters()
    for iteration in range(config.num_iterations):
        if iteration == 0:
            current = samples.token_logprobs  # computed with a gradient while sampling
        else:
            current, _ = policy.logprobs(repeated, samples.completion_ids, samples.completion_mask,
                                         temperature=config.temperature, grad=True)
        loss, stats = grpo_loss(current, old, ref, samples.completion_mask, advantages, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm))
        if not math.isfinite(grad_norm):  # a NaN/inf gradient would poison the weights: skip it
            optimizer.zero_grad(set_to_none=True)
            continue
        optimizer.step()
    components = {
        name: float(sum(v for v in values if v is not None) / max(1, sum(v is not None for v in values)))
        for name, values in rewards.components.items()
    }
    return StepStats(
        step=step, reward=float(totals.mean()),
        reward_std=float(totals.view(-1, config.num_generations).std(dim=1).mean()),
        components=components, loss=float(loss.detach()), kl=stats["kl"], clip_fraction=stats["clip_fraction"],
        grad_norm=grad_norm, lr=lr,
    )
