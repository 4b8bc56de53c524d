"""GRPO: advantages, the clipped surrogate with the k3 KL, the schedule, and one real step."""

from __future__ import annotations

import pytest
import torch

from cropvlm.render import RenderConfig
from cropvlm.training.examples import build_examples
from cropvlm.training.grpo import GrpoConfig, group_advantages, grpo_loss, grpo_step, lr_factor
from cropvlm.training.rewarding import ReaderJudge
from cropvlm.policies.base import CropRequest
from tests.training.conftest import SPECS, PatchReader, patch_dataset
from tests.training.test_heatmap_policy import SMALL, small_policy


def test_advantages_dr_grpo_and_std_scaled():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0])
    dr = group_advantages(rewards, 3, "none")
    assert torch.allclose(dr, torch.tensor([2 / 3, -1 / 3, -1 / 3, -2 / 3, 1 / 3, 1 / 3]))
    scaled = group_advantages(rewards, 3, "group")
    assert torch.allclose(scaled[:3], dr[:3] / (rewards[:3].std() + 1e-4))
    assert torch.allclose(group_advantages(torch.ones(6), 3, "group"), torch.zeros(6))  # no signal, no NaN
    with pytest.raises(ValueError):
        group_advantages(rewards, 4)


def test_loss_gradient_is_the_policy_gradient_when_on_policy():
    config = GrpoConfig(beta=0.0, loss_type="dr_grpo")
    logprobs = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]], requires_grad=True)
    advantages = torch.tensor([1.0, -2.0])
    loss, stats = grpo_loss(logprobs, logprobs.detach(), None, torch.ones(2, 2, dtype=torch.bool), advantages, config)
    loss.backward()
    # d/dlogp of -ratio * A with ratio = exp(logp - old) = 1: -A, over N x T = 4 tokens
    assert torch.allclose(logprobs.grad, torch.tensor([[-0.25, -0.25], [0.5, 0.5]]))
    assert stats["clip_fraction"] == 0.0


def test_clipping_stops_the_gradient_beyond_the_trust_region():
    config = GrpoConfig(beta=0.0, epsilon=0.2)
    logprobs = torch.tensor([[0.5]], requires_grad=True)  # ratio e^0.5 = 1.65 > 1.2
    loss, stats = grpo_loss(logprobs, torch.zeros(1, 1), None, torch.ones(1, 1, dtype=torch.bool),
                            torch.tensor([1.0]), config)
    loss.backward()
    assert logprobs.grad.abs().max() == 0 and stats["clip_fraction"] == 1.0


def test_k3_kl_is_zero_at_the_reference_and_positive_away_from_it():
    config = GrpoConfig(beta=0.5)
    mask = torch.ones(1, 3, dtype=torch.bool)
    current = torch.tensor([[-1.0, -0.5, -2.0]])
    _, same = grpo_loss(current, current, current, mask, torch.zeros(1), config)
    _, away = grpo_loss(current, current, current - 0.7, mask, torch.zeros(1), config)
    assert same["kl"] == pytest.approx(0.0) and away["kl"] > 0.0


def test_grpo_and_dr_grpo_reduce_variable_lengths_differently():
    mask = torch.tensor([[True, True, True, True], [True, False, False, False]])
    lp = torch.zeros(2, 4)
    adv = torch.tensor([1.0, 1.0])
    dr, _ = grpo_loss(lp, lp, None, mask, adv, GrpoConfig(beta=0.0, loss_type="dr_grpo"))
    seq, _ = grpo_loss(lp, lp, None, mask, adv, GrpoConfig(beta=0.0, loss_type="grpo"))
    assert dr.item() == pytest.approx(-5 / 8) and seq.item() == pytest.approx(-1.0)


def test_schedule_warms_up_then_decays_to_zero():
    factors = [lr_factor(s, 100, 0.05) for s in range(100)]
    assert factors[0] == pytest.approx(0.2) and factors[4] == pytest.approx(1.0)
    assert factors[50] < 1.0 and factors[-1] < 0.01


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="scale_rewards"):
        GrpoConfig(scale_rewards="batch")
    with pytest.raises(ValueError, match="num_generations"):
        GrpoConfig(num_generations=1)


def test_one_step_moves_probability_towards_the_crops_the_reader_could_read():
    files, labels = patch_dataset(2)
    examples = build_examples(labels, SPECS, files.__getitem__, RenderConfig(), view_size=SMALL.input_size)
    policy = small_policy(7)
    batch = examples.examples
    requests = [CropRequest(examples.view(e), e.spec.question, e.spec.field) for e in batch]
    judge = ReaderJudge(PatchReader(), {"accuracy": 1.0, "area": 0.5}, examples)
    config = GrpoConfig(num_generations=6, beta=0.0, learning_rate=3e-3, warmup_ratio=0.0, max_grad_norm=10.0,
                        steps=1000)
    optimizer = torch.optim.SGD(policy.parameters(), lr=config.learning_rate)
    seen = {}

    def reward_fn(samples):
        seen["samples"] = samples
        seen["rewards"] = judge(batch, samples)
        return seen["rewards"]

    torch.manual_seed(0)
    stats = grpo_step(policy, None, optimizer, requests, reward_fn, config, step=0)
    samples, rewards = seen["samples"], seen["rewards"]
    assert stats.reward_std > 0, "the reader must tell some crops apart"
    advantages = group_advantages(torch.tensor(rewards.total), 6)
    repeated = [requests[g] for g in samples.group]
    after, _ = policy.logprobs(repeated, samples.completion_ids, temperature=0.8, grad=False)
    moved = (after.sum(1) - samples.logprobs.detach())
    assert float((advantages * moved).sum()) > 0  # better-than-group boxes got likelier
    assert set(rewards.components) == {"accuracy", "area"}
