"""`HfPolicy`: a box-generating VLM (the paper's cropper), optionally with a LoRA adapter.

Prompt: one user turn, the page, then `"{Question}\\nOutline the region in the image that
would help answer this question."`; output `"[x1, y1, x2, y2]."` in percent. `propose` is
greedy; an output that does not parse falls back to the full page (never a 99x99 corner)
and is counted in `invalid_count`. `sample` draws completions for GRPO and returns their
log-probabilities with a gradient; `logprobs` re-scores given completions (e.g. under the
frozen reference model for the KL term).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from cropvlm.hf import loading, prompts, scoring
from cropvlm.policies.base import CropRequest, Proposal, proposal_from_text


@dataclass
class PolicySamples:
    """`num_samples` completions per request, grouped: rows [g * k, (g + 1) * k) are request g's."""

    texts: list[str]
    proposals: list[Proposal]  # parsed boxes (invalid -> full page, valid=False)
    group: list[int]  # request index of each row
    completion_ids: torch.Tensor  # [N, T] sampled token ids (pad after the stop token)
    completion_mask: torch.Tensor  # [N, T] bool: tokens up to and including the stop token
    token_logprobs: torch.Tensor  # [N, T] log p / temperature-scaled, with grad; 0 where masked
    logprobs: torch.Tensor  # [N] sum of token_logprobs: the sequence log-probability, with grad


class HfPolicy:
    """Crop policy over an image-text-to-text checkpoint.

    path:           hub id or folder of the base model
    adapter:        folder (or hub id) of a peft LoRA adapter; None = base model only
    trainable:      weights get gradients (GRPO / SFT): with an adapter only the adapter's, base frozen;
                    without one the whole model. False: everything frozen (inference)
    resolution:     the processor's image size (the paper's policy: Idefics3 longest edge 512)
    device, dtype:  default CUDA + bf16 when present, else CPU + fp32
    batch_size:     requests per generate call
    max_new_tokens: 20 fits `"[100, 100, 100, 100]."` in any tokenizer seen so far
    """

    def __init__(self, path: str, *, adapter: str | None = None, trainable: bool = False,
                 resolution: int | None = None, device: str | None = None, dtype: str | None = None,
                 batch_size: int = 32, max_new_tokens: int = 20, attn_implementation: str | None = None) -> None:
        self.path = str(path)
        self.adapter = None if adapter is None else str(adapter)
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.invalid_count = 0  # invalid outputs of `propose` (fell back to the full page)
        self.proposed_count = 0
        self._loaded = loading.load(self.path, device=device, dtype=dtype, resolution=resolution,
                                    adapter=self.adapter, trainable=trainable,
                                    attn_implementation=attn_implementation)
        res = "default" if resolution is None else str(resolution)
        self.version = f"hf:{self._loaded.name}@{res}#{self._loaded.fingerprint}"
        if self.adapter is not None:
            digest = loading.fingerprint(self.adapter, content=True, files=("adapter_config.json",))
            self.version += f"+lora:{loading.short_name(self.adapter)}#{digest}"

    @property
    def model(self):
        return self._loaded.model

    @property
    def processor(self):
        return self._loaded.processor

    def _inputs(self, requests: Sequence[CropRequest]) -> tuple[list[str], list[list[Image.Image]]]:
        processor = self._loaded.processor
        texts = [prompts.render(processor, prompts.policy_text(r.question), 1) for r in requests]
        return texts, [[r.page] for r in requests]

    # --- inference ---------------------------------------------------------------------
    def propose(self, requests: Sequence[CropRequest]) -> list[Proposal]:
        proposals: list[Proposal] = []
        tokenizer = self._loaded.processor.tokenizer
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            texts, images = self._inputs(chunk)
            out = scoring.generate(self._loaded, texts, images, max_new_tokens=self.max_new_tokens,
                                   with_logprobs=False)
            for i in range(len(chunk)):
                text = tokenizer.decode(out.tokens[i, : int(out.ends[i])], skip_special_tokens=True).strip()
                proposal = proposal_from_text(text)
                self.invalid_count += not proposal.valid
                proposals.append(proposal)
        self.proposed_count += len(requests)
        return proposals

    # --- training ----------------------------------------------------------------------
    def sample(self, requests: Sequence[CropRequest], num_samples: int = 6, temperature: float = 0.8,
               max_new_tokens: int | None = None) -> PolicySamples:
        """Sample `num_samples` completions per request; log-probs carry a gradient.

        The log-probs are recomputed teacher-forced (right padded, exact) from the
        temperature-scaled logits the tokens were drawn from; the mask ends at each row's
        stop token, so padding never enters the loss.
        """
        if num_samples < 1 or temperature <= 0:
            raise ValueError("num_samples must be >= 1 and temperature > 0")
        limit = int(max_new_tokens or self.max_new_tokens)
        tokenizer = self._loaded.processor.tokenizer
        per_chunk = max(1, self.batch_size // num_samples)
        texts_out: list[str] = []
        groups: list[int] = []
        continuations: list[list[int]] = []
        for start in range(0, len(requests), per_chunk):
            chunk = requests[start : start + per_chunk]
            texts, images = self._inputs(chunk)
            out = scoring.generate(self._loaded, texts, images, max_new_tokens=limit, do_sample=True,
                                   temperature=temperature, num_return_sequences=num_samples,
                                   with_logprobs=False)
            for row in range(out.tokens.shape[0]):
                continuations.append(out.tokens[row, : int(out.lengths[row])].tolist())
                texts_out.append(tokenizer.decode(out.tokens[row, : int(out.ends[row])],
                                                  skip_special_tokens=True).strip())
                groups.append(start + row // num_samples)
        repeated = [requests[g] for g in groups]
        token_lp, mask = self.logprobs(repeated, continuations, temperature=temperature, grad=True)
        width = token_lp.shape[1]
        pad = scoring.pad_id(self._loaded)
        ids = torch.full((len(continuations), width), pad, dtype=torch.long, device=token_lp.device)
        for row, cont in enumerate(continuations):
            ids[row, : len(cont)] = torch.as_tensor(cont, dtype=torch.long, device=ids.device)
        return PolicySamples(
            texts=texts_out, proposals=[proposal_from_text(t) for t in texts_out], group=groups,
            completion_ids=ids, completion_mask=mask, token_logprobs=token_lp, logprobs=token_lp.sum(1),
        )

    def logprobs(self, requests: Sequence[CropRequest], completions: Sequence[Sequence[int]] | torch.Tensor,
                 completion_mask: torch.Tensor | None = None, *, temperature: float = 1.0,
                 grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced per-token log-probs `[N, T]` and mask of given completions.

        `completions`: lists of token ids, or an `[N, T]` tensor with `completion_mask`.
        For the KL reference, call this on a frozen policy (or inside peft's
        `model.disable_adapter()`) with `grad=False`.
        """
        if torch.is_tensor(completions):
            if completion_mask is None:
                raise ValueError("a tensor of completions needs its completion_mask")
            lengths = completion_mask.sum(1).tolist()
            completions = [completions[i, : int(n)].tolist() for i, n in enumerate(lengths)]
        parts, masks = [], []
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            texts, images = self._inputs(chunk)
            lp, mask = scoring.continuation_logprobs(self._loaded, texts, images,
                                                     completions[start : start + self.batch_size],
                                                     temperature=temperature, grad=grad)
            parts.append(lp)
            masks.append(mask)
        width = max(p.shape[1] for p in parts)
        lp = torch.cat([torch.nn.functional.pad(p, (0, width - p.shape[1])) for p in parts])
        mask = torch.cat([torch.nn.functional.pad(m, (0, width - m.shape[1])) for m in masks])
        return lp, mask
