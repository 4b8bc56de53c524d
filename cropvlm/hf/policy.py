"""`HfPolicy`: a box-generating VLM (the paper's cropper), optionally with a LoRA adapter.

Prompt: one user turn, the page, then `"{Question}\\nOutline the region in the image that
would help answer this question."`; output `"[x1, y1, x2, y2]."` in percent. `propose` is
greedy; an output that does not parse falls back to the full page (never a 99x99 corner)
and is counted in `invalid_count`. `sample` draws completions for GRPO and returns their
log-probabilities with a gradient; `logprobs` re-scores given completions (e.g. under the
frozen reference model for the KL term).

It offers the trainable-policy protocol of `cropvlm.training` (`training/protocol.py`), so
the one GRPO / SFT implementation drives it as it drives the heatmap policy:

- `parameters()`: the weights with `requires_grad` (the LoRA weights with an adapter).
- `sft_loss(requests, boxes)`: mean teacher-forced NLL per token of `box.format()` (as the
  chat template writes an assistant turn: SmolVLM's leading space) plus the stop token.
- `frozen_copy()`: the KL reference. With a peft adapter it shares the model (no copy of
  any weight): its log-probs run inside `model.disable_adapter()`, so the reference is the
  *base model*, i.e. the policy before LoRA training; after `reference.load_weights(folder)`
  (the training loop does this with the SFT checkpoint) they run with that adapter loaded as
  a second, frozen adapter. Without an adapter: a deep copy, frozen.
- `save(folder)` / `load_weights(folder)`: the adapter (peft `save_pretrained`), or the whole
  model + processor; the folder is itself servable (`hf:BASE?adapter=FOLDER`, `hf:FOLDER`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property, partial
from pathlib import Path

import torch
from PIL import Image

from cropvlm.box import Box
from cropvlm.hf import loading, prompts, scoring
from cropvlm.hf.adapters import AdapterReference, load_adapter_weights, lora_suffix
from cropvlm.jobs import Job, run_jobs
from cropvlm.policies.base import CropRequest, Proposal, proposal_from_text
from cropvlm.policies.samples import PolicySamples

_PROBE_BOX = "[12, 34, 56, 78]."


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
    prefetch:       `propose` encodes the next chunk in a background thread while the model
                    generates (as the reader does; same boxes)
    """

    def __init__(self, path: str, *, adapter: str | None = None, trainable: bool = False,
                 resolution: int | None = None, device: str | None = None, dtype: str | None = None,
                 batch_size: int = 32, max_new_tokens: int = 20, attn_implementation: str | None = None,
                 prefetch: bool = True, decode: str = "dynamic") -> None:
        self.path = str(path)
        self.decode = scoring.check_decode(decode)
        self.adapter = None if adapter is None else str(adapter)
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.prefetch = bool(prefetch)
        self.invalid_count = 0  # invalid outputs of `propose` (fell back to the full page)
        self.proposed_count = 0
        self._loaded = loading.load(self.path, device=device, dtype=dtype, resolution=resolution,
                                    adapter=self.adapter, trainable=trainable,
                                    attn_implementation=attn_implementation)
        res = "default" if resolution is None else str(resolution)
        self._resolution = res
        self.base_version = f"hf:{self._loaded.name}@{res}#{self._loaded.fingerprint}"
        self.version = self.base_version + lora_suffix(self.adapter)

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
        run_jobs(self.jobs(requests, proposals), prefetch=self.prefetch)
        return proposals

    def jobs(self, requests: Sequence[CropRequest], out: list[Proposal]) -> Iterator[Job]:
        """`propose` as model calls of `batch_size` requests (see `cropvlm.jobs`): each
        call's proposals are appended to `out` in order as it finishes."""
        tokenizer = self._loaded.processor.tokenizer
        # token ids read here, before any prefetch thread; decoding in `finish`, outside it
        stops, pad = sorted(scoring.stop_ids(self._loaded)), scoring.pad_id(self._loaded)

        def generate(batch) -> tuple[torch.Tensor, torch.Tensor]:
            out = scoring.generate_encoded(self._loaded, batch, stops=stops, pad=pad,
                                           max_new_tokens=self.max_new_tokens, with_logprobs=False,
                                           static_cache=self.decode == "static")
            return out.tokens.cpu(), out.ends.cpu()

        def finish(chunk: Sequence[CropRequest], generated: tuple[torch.Tensor, torch.Tensor]) -> None:
            for request, row, end in zip(chunk, *generated, strict=True):
                proposal = self.proposal(tokenizer.decode(row[: int(end)], skip_special_tokens=True).strip(), request)
                self.invalid_count += not proposal.valid
                out.append(proposal)
            self.proposed_count += len(chunk)

        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            yield Job(partial(self._encode, chunk), generate, partial(finish, chunk), name="policy")

    def _encode(self, requests: Sequence[CropRequest]):
        texts, images = self._inputs(requests)
        return scoring.encode_ahead(self._loaded, texts, images, padding_side="left")

    def proposal(self, text: str, request: CropRequest) -> Proposal:
        """The proposal for the model's output `text` (the full page where it does not parse)."""
        return proposal_from_text(text)

    # --- training ----------------------------------------------------------------------
    def sample(self, requests: Sequence[CropRequest], num_samples: int = 6, temperature: float = 0.8,
               max_new_tokens: int | None = None) -> PolicySamples:
        """Sample `num_samples` completions per request; log-probs carry a gradient.

        The log-probs are recomputed teacher-forced (right padded, exact) from the
        temperature-scaled logits the tokens were drawn from; the mask ends at each row's
        stop token, so padding never enters the loss. Special tokens other than the stop
        tokens (image placeholders, turn markers) are never sampled: a box is plain text, and
        a sampled `<image>` would break the re-scoring (image tokens without features). Their
        probability, tiny once the policy emits boxes, is not removed from the log-probs.
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
            with self._suppressed_specials():
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

    @cached_property
    def _special_ids(self) -> list[int]:
        """Special tokens a box never contains: all of the tokenizer's but the stop tokens."""
        processor, tokenizer = self._loaded.processor, self._loaded.processor.tokenizer
        ids = {int(i) for i in (getattr(tokenizer, "all_special_ids", None) or [])}
        ids |= {int(i) for i, added in getattr(tokenizer, "added_tokens_decoder", {}).items()
                if getattr(added, "special", False)}
        for name in ("image_token_id", "video_token_id"):
            value = getattr(processor, name, None)
            if isinstance(value, int):
                ids.add(value)
        return sorted(ids - scoring.stop_ids(self._loaded))

    @contextmanager
    def _suppressed_specials(self) -> Iterator[None]:
        config = self.model.generation_config
        previous = config.suppress_tokens
        config.suppress_tokens = sorted(set(previous or []) | set(self._special_ids)) or None
        try:
            yield
        finally:
            config.suppress_tokens = previous

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

    # --- the trainable-policy protocol (cropvlm.training) ------------------------------------
    def parameters(self) -> list[torch.nn.Parameter]:
        """The weights to train: the LoRA weights with an adapter, all of them without; [] when frozen."""
        return [p for p in self.model.parameters() if p.requires_grad]

    @property
    def is_peft(self) -> bool:
        return callable(getattr(self.model, "disable_adapter", None)) and hasattr(self.model, "peft_config")

    def frozen_copy(self) -> HfPolicy | AdapterReference:
        """The KL reference. With a peft adapter: an `AdapterReference` on the same model (the
        base model, i.e. the policy before LoRA training, until its `load_weights` loads a
        saved adapter); without one: a deep copy of the model, frozen and in eval mode."""
        if self.is_peft:
            return AdapterReference(self)
        clone = copy.deepcopy(self.model).eval()
        clone.requires_grad_(False)
        frozen = copy.copy(self)
        frozen._loaded = dataclasses.replace(self._loaded, model=clone)
        frozen.invalid_count = frozen.proposed_count = 0
        return frozen

    def completion_ids(self, text: str) -> list[int]:
        """The tokens the model should emit for `text` as its whole answer: what the chat
        template writes before an assistant's text (SmolVLM: one space; only whitespace is
        kept), the text, then the template's end-of-turn stop token (else the tokenizer's eos)."""
        lead, stop = self._answer_format
        ids = self._loaded.processor.tokenizer(lead + text, add_special_tokens=False)["input_ids"]
        return [int(i) for i in ids] + [stop]

    @cached_property
    def _answer_format(self) -> tuple[str, int]:
        processor, tokenizer = self._loaded.processor, self._loaded.processor.tokenizer
        user = prompts.user_turn(prompts.policy_text("Where?"), 1)
        lead, trail = "", ""
        try:
            prompt = processor.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
            full = processor.apply_chat_template(
                user + [{"role": "assistant", "content": [{"type": "text", "text": _PROBE_BOX}]}],
                add_generation_prompt=False, tokenize=False)
        except Exception:  # noqa: BLE001 - a template without assistant turns: plain text + eos
            prompt = full = ""
        if prompt and full.startswith(prompt) and _PROBE_BOX in full[len(prompt):]:
            lead, _, trail = full[len(prompt):].partition(_PROBE_BOX)
        lead = lead if not lead.strip() else ""
        stops = scoring.stop_ids(self._loaded)
        stop = next((int(t) for t in tokenizer(trail, add_special_tokens=False)["input_ids"] if int(t) in stops), None)
        if stop is None:
            eos = tokenizer.eos_token_id
            stop = int(eos) if eos is not None and (eos in stops or not stops) else min(stops)
        return lead, stop

    def sft_loss(self, requests: Sequence[CropRequest], boxes: Sequence[Box]) -> torch.Tensor:
        """Mean teacher-forced NLL per token of each box's text (`box.format()`, the paper's
        `"[x1, y1, x2, y2]."`) followed by the stop token; padding never counts."""
        if len(requests) != len(boxes):
            raise ValueError(f"{len(requests)} requests but {len(boxes)} boxes")
        targets = [self.completion_ids(box.format()) for box in boxes]
        token_lp, mask = self.logprobs(requests, targets, grad=True)
        return -(token_lp.sum() / mask.sum().clamp(min=1))

    def save(self, folder: str | Path, *, onnx: bool = False) -> Path:
        """With an adapter: peft `save_pretrained` of the trained adapter only (never the
        reference's); without: the whole model + processor. `onnx` is accepted for the
        protocol and ignored: the folder is what serving loads."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.is_peft:
            self.model.save_pretrained(str(folder), selected_adapters=[self.model.active_adapter])
        else:
            self.model.save_pretrained(str(folder))
            self._loaded.processor.save_pretrained(str(folder))
        return folder

    def load_weights(self, folder: str | Path) -> None:
        """Restore weights written by `save` in place (parameters keep their identity, so an
        optimizer built on them stays valid). `version` becomes what loading the folder
        would give: `...+lora:FOLDER#DIGEST` with an adapter, `hf:FOLDER@RES#FINGERPRINT` without."""
        folder = str(folder)
        if self.is_peft:
            load_adapter_weights(self.model, folder, self.model.active_adapter)
            self.adapter = folder
            self.version = self.base_version + lora_suffix(folder)
            return
        from transformers import AutoModelForImageTextToText

        saved = AutoModelForImageTextToText.from_pretrained(folder, dtype=self._loaded.dtype)
        self.model.load_state_dict(saved.state_dict())  # copies in place; requires_grad flags stay
        del saved
        self.version = f"hf:{loading.short_name(folder)}@{self._resolution}#{loading.fingerprint(folder)}"
