"""The one GRPO / SFT implementation driving `HfPolicy` (a tiny Idefics3 with a LoRA adapter):
a GRPO step trains the adapter only, and `train` runs both phases end to end and resumes."""

from __future__ import annotations

import math
import os
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from cropvlm.policies.base import CropRequest  # noqa: E402
from cropvlm.render import RenderConfig  # noqa: E402
from cropvlm.training.examples import build_examples  # noqa: E402
from cropvlm.training.grpo import GrpoConfig, RewardBatch, grpo_step  # noqa: E402
from cropvlm.training.loop import REFERENCE_DIR, STATE_FILE, TrainConfig, train  # noqa: E402
from tests.training.conftest import SPECS, PatchReader, patch_dataset  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "cropvlm"))
import tiny_models  # noqa: E402


@pytest.fixture(scope="module")
def smol(tmp_path_factory):
    """A tiny SmolVLM checkpoint and a random LoRA adapter for it; no hub access."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        folder = tmp_path_factory.mktemp("hf-grpo")
        base = tiny_models.build_idefics3(folder / "smol")
        torch.manual_seed(0)
        model = AutoModelForImageTextToText.from_pretrained(base)
        config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(model, config).save_pretrained(folder / "lora")
        yield base, folder / "lora"


@pytest.fixture(scope="module")
def examples():
    files, labels = patch_dataset(3)
    return build_examples(labels, SPECS, files.__getitem__, RenderConfig(), view_size=64)


def lora_policy(smol, max_new_tokens=8):
    from cropvlm.hf import HfPolicy

    base, adapter = smol
    return HfPolicy(str(base), adapter=str(adapter), trainable=True, max_new_tokens=max_new_tokens)


def weights(policy, lora: bool) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in policy.model.named_parameters() if ("lora_" in n) == lora}


def test_a_grpo_step_on_an_hf_policy_trains_the_adapter_only(smol, examples):
    policy = lora_policy(smol)
    reference = policy.frozen_copy()
    batch = examples.examples[:2]
    requests = [CropRequest(examples.view(e), e.spec.question, e.spec.field) for e in batch]

    def reward_fn(samples):  # any reward that differs within a group gives a gradient
        first = samples.completion_ids[:, 0].tolist()
        return RewardBatch(total=[float(t % 5) for t in first], components={"first": [float(t % 5) for t in first]})

    config = GrpoConfig(num_generations=3, prompts_per_step=2, steps=2, learning_rate=1e-2, warmup_ratio=0.0,
                        max_grad_norm=1.0, beta=0.04, num_iterations=2)
    lora_before, base_before = weights(policy, True), weights(policy, False)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.learning_rate)
    torch.manual_seed(3)
    stats = grpo_step(policy, reference, optimizer, requests, reward_fn, config, step=0)
    assert math.isfinite(stats.loss) and math.isfinite(stats.grad_norm) and stats.grad_norm > 0
    assert stats.lr == pytest.approx(1e-2) and "first" in stats.components
    assert stats.kl > 0  # the second iteration's policy has moved away from its reference
    lora_after, base_after = weights(policy, True), weights(policy, False)
    assert any(not torch.equal(lora_before[n], lora_after[n]) for n in lora_before)
    assert all(torch.equal(base_before[n], base_after[n]) for n in base_before)
    assert len(policy.parameters()) == len(lora_before)  # the reference switch left the flags alone


def test_train_runs_sft_then_grpo_on_an_hf_policy_and_resumes(smol, examples, tmp_path):
    from peft.utils import load_peft_weights

    config = TrainConfig(sft_steps=2, sft_pages_per_step=2, sft_learning_rate=1e-2, checkpoint_every=2,
                         grpo=GrpoConfig(steps=2, prompts_per_step=2, num_generations=2, learning_rate=1e-3,
                                         reward_weights={"accuracy": 1.0, "format": 1.0, "area": 0.2}))
    policy = lora_policy(smol)
    reader = PatchReader()
    state = train(policy, examples, reader, config, checkpoint_dir=tmp_path)
    assert state.phase == "done"
    assert [p["step"] for p in state.sft_curve] == [0, 1] and all(p["loss"] > 0 for p in state.sft_curve)
    assert [p["step"] for p in state.grpo_curve] == [0, 1]
    assert all(math.isfinite(p["loss"]) for p in state.grpo_curve)
    assert state.grpo_curve[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # GRPO starts at its reference: the SFT weights
    assert reader.calls == 2  # one batched reader call per GRPO step
    assert (tmp_path / STATE_FILE).is_file() and (tmp_path / "adapter_model.safetensors").is_file()
    assert (tmp_path / REFERENCE_DIR / "adapter_model.safetensors").is_file()

    # the KL anchor was the SFT checkpoint, held as a second frozen adapter of the same model
    assert "reference" in policy.model.peft_config
    saved = load_peft_weights(str(tmp_path / REFERENCE_DIR))
    held = {n: p for n, p in policy.model.named_parameters() if ".reference." in n}
    assert held and not any(p.requires_grad for p in held.values())
    for key, value in saved.items():
        name = key.replace(".weight", ".reference.weight")
        assert torch.equal(held[name].detach(), value.to(held[name].dtype))

    # a fresh worker resuming the finished run gets the trained weights back
    resumed = lora_policy(smol)
    again = train(resumed, examples, PatchReader(), config, checkpoint_dir=tmp_path)
    assert again.phase == "done" and len(again.grpo_curve) == 2
    requests = [CropRequest(examples.view(e), e.spec.question, e.spec.field) for e in examples.examples[:2]]
    completions = [policy.completion_ids("[10, 20, 30, 40].")] * 2
    assert torch.equal(resumed.logprobs(requests, completions, grad=False)[0],
                       policy.logprobs(requests, completions, grad=False)[0])
    assert "+lora:" + tmp_path.name + "#" in resumed.version
