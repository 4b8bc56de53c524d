"""LoRA adapters of the Hugging Face policy: the KL reference that shares the policy's peft
model (`AdapterReference`), adapter weights loaded in place, and the version suffix that
names an adapter by its folder and content."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from cropvlm.hf import loading
from cropvlm.policies.base import CropRequest, Proposal
from cropvlm.policies.samples import PolicySamples

if TYPE_CHECKING:
    from cropvlm.hf.policy import HfPolicy

REFERENCE_ADAPTER = "reference"  # peft name of the KL reference's adapter


class AdapterReference:
    """The KL reference of a LoRA policy, sharing its peft model: no copy of any weight.

    Until `load_weights`, every call runs inside `model.disable_adapter()`: the reference is
    the base model (the policy before LoRA training). `load_weights(folder)` loads a saved
    adapter as a second adapter named `reference`, frozen; calls then run with it active
    (the paper's reference: the frozen SFT policy, which the training loop saves). Each call
    switches the shared model and switches it back, restoring every `requires_grad` flag, so
    it must not run concurrently with the policy (training is sequential). No gradients.
    """

    def __init__(self, policy: HfPolicy) -> None:
        self.policy = policy
        self.adapter: str | None = None
        self.version = policy.base_version

    def parameters(self) -> list[torch.nn.Parameter]:
        return []

    def frozen_copy(self) -> AdapterReference:
        return self

    @contextmanager
    def active(self) -> Iterator[None]:
        """The shared model as the reference, for the duration of the block."""
        model = self.policy.model
        with _requires_grad_kept(model):
            if self.adapter is None:
                with model.disable_adapter():
                    yield
            else:
                previous = model.active_adapter
                model.set_adapter(REFERENCE_ADAPTER)
                try:
                    yield
                finally:
                    model.set_adapter(previous)

    def logprobs(self, requests: Sequence[CropRequest], completions, completion_mask: torch.Tensor | None = None, *,
                 temperature: float = 1.0, grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """As `HfPolicy.logprobs`, under the reference; never with a gradient."""
        with self.active():
            return self.policy.logprobs(requests, completions, completion_mask, temperature=temperature, grad=False)

    def propose(self, requests: Sequence[CropRequest]) -> list[Proposal]:
        with self.active():
            return self.policy.propose(requests)

    def sample(self, requests: Sequence[CropRequest], num_samples: int = 6, temperature: float = 0.8,
               max_new_tokens: int | None = None) -> PolicySamples:
        with self.active(), torch.no_grad():
            return self.policy.sample(requests, num_samples, temperature, max_new_tokens)

    def load_weights(self, folder: str | Path) -> None:
        """Make the adapter saved in `folder` the reference (loaded once, then overwritten in place)."""
        model, folder = self.policy.model, str(folder)
        with _requires_grad_kept(model):
            if REFERENCE_ADAPTER in model.peft_config:
                load_adapter_weights(model, folder, REFERENCE_ADAPTER)
            else:
                model.load_adapter(folder, adapter_name=REFERENCE_ADAPTER, is_trainable=False)
        for name, param in model.named_parameters():
            if f".{REFERENCE_ADAPTER}." in name:
                param.requires_grad_(False)
        model.eval()
        self.adapter = folder
        self.version = self.policy.base_version + lora_suffix(folder)


def lora_suffix(adapter: str | None) -> str:
    if adapter is None:
        return ""
    digest = loading.fingerprint(adapter, content=True, files=("adapter_config.json",))
    return f"+lora:{loading.short_name(adapter)}#{digest}"


def load_adapter_weights(model, folder: str, adapter_name: str) -> None:
    """Copy the adapter weights saved in `folder` into the model's adapter `adapter_name`, in place."""
    from peft.utils import load_peft_weights, set_peft_model_state_dict

    device = next(model.parameters()).device
    weights = load_peft_weights(folder, device=str(device))
    result = set_peft_model_state_dict(model, weights, adapter_name=adapter_name)
    unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if unexpected:
        raise ValueError(f"adapter {folder} does not fit the model: unexpected weights {unexpected[:3]}")


@contextmanager
def _requires_grad_kept(model) -> Iterator[None]:
    """Every parameter's `requires_grad` as it was before the block (peft's adapter switching
    and loading change them)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        yield
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)
