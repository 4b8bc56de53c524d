"""Batched generation and exact teacher-forced log-probabilities for a loaded VLM.

Shared by the reader (answers, confidences, `score`) and the policy (boxes, sampled
completions with log-probs for GRPO). Two padding rules, each chosen for exactness:

- generation pads on the left (every row's next token is in the last column; `generate`
  derives positions from the attention mask);
- teacher forcing pads on the right: each row is `prompt + continuation` starting at
  column 0, so positions are those of the unbatched row without any position-id tricks;
  only the continuation's tokens are scored (the mask stops at the continuation's end, never
  "to the last pad token"), and the LM head runs on those positions only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from cropvlm.hf.image_inputs import Region, device_images, processor_device, shrink_once
from cropvlm.hf.loading import DECODES, Loaded


def check_decode(decode: str) -> str:
    if decode not in DECODES:
        raise ValueError(f"decode must be one of {DECODES}, got {decode!r}")
    return decode


def stop_ids(loaded: Loaded) -> set[int]:
    ids: set[int] = set()
    eos = getattr(getattr(loaded.model, "generation_config", None), "eos_token_id", None)
    for value in eos if isinstance(eos, (list, tuple)) else [eos]:
        if value is not None:
            ids.add(int(value))
    if loaded.processor.tokenizer.eos_token_id is not None:
        ids.add(int(loaded.processor.tokenizer.eos_token_id))
    return ids


def pad_id(loaded: Loaded) -> int:
    tok = loaded.processor.tokenizer
    if tok.pad_token_id is not None:
        return int(tok.pad_token_id)
    return min(stop_ids(loaded)) if stop_ids(loaded) else 0


def encode(loaded: Loaded, prompts: Sequence[str], images: Sequence[Sequence[Image.Image]], padding_side: str,
           regions: dict[int, Region] | None = None):
    """Processor inputs on the model's device; floating tensors in the model's dtype.
    `regions`: crops' page and pixel box by `id(crop)` (sliced on the device, see
    `image_inputs.device_images`)."""
    processor, tok = loaded.processor, loaded.processor.tokenizer
    rows, device = _processor_images(loaded, images, regions)
    image_arg: Any = rows if loaded.family == "idefics3" else [i for row in rows for i in row]
    add_special = _add_special(tok, prompts)
    kwargs: dict[str, Any] = {"device": device} if device is not None and image_arg else {}
    batch = processor(text=list(prompts), images=image_arg or None, padding=True, padding_side=padding_side,
                      return_tensors="pt", add_special_tokens=add_special, **kwargs)  # per call: thread-safe
    return batch.to(loaded.device).to(loaded.dtype)  # BatchFeature casts floating tensors only


def _processor_images(loaded: Loaded, images: Sequence[Sequence[Image.Image]],
                      regions: dict[int, Region] | None) -> tuple[list[list[Any]], Any]:
    """The images as the processor gets them, and the device its image processor runs on
    (None: the CPU): each distinct page uploaded once there (crops sliced from it), else
    resized once, not once per field."""
    device = processor_device(loaded)
    if device is not None and loaded.image_tensors:
        return device_images(images, device, regions), device
    return shrink_once(loaded, images), device


def _add_special(tok: Any, prompts: Sequence[str]) -> bool:
    # A template that writes the BOS itself must not get a second one from the tokenizer.
    bos = tok.bos_token
    return not (bos and all(p.startswith(bos) for p in prompts))


@dataclass
class Encoded:
    """Inputs encoded on a side CUDA stream; `ready` is recorded on that stream after them."""

    batch: Any
    ready: Any  # torch.cuda.Event
    device: Any  # torch.device of the model


_STREAMS = threading.local()  # one side stream per thread and device


def encode_ahead(loaded: Loaded, prompts: Sequence[str], images: Sequence[Sequence[Image.Image]],
                 padding_side: str, regions: dict[int, Region] | None = None):
    """`encode` for a batch that `generate_encoded` runs later, maybe while the model runs the
    one before (the prefetch thread). On CUDA the processor's uploads and kernels go to this
    thread's own stream: on the default stream every page upload would wait for the
    generation queued ahead of it, and its kernels would queue between generate's. Returns an
    `Encoded` there (`generate_encoded` makes the model's stream wait for it), else `encode`'s
    batch."""
    how = encode_distinct if distinct_applies(loaded, prompts, images) else encode
    if loaded.device.type != "cuda" or not loaded.side_stream:
        return how(loaded, prompts, images, padding_side, regions=regions)
    streams = _STREAMS.__dict__.setdefault("by_device", {})
    stream = streams.get(loaded.device) or streams.setdefault(loaded.device, torch.cuda.Stream(loaded.device))
    with torch.cuda.stream(stream):
        batch = how(loaded, prompts, images, padding_side, regions=regions)
        ready = torch.cuda.Event()
        ready.record(stream)
    return Encoded(batch, ready, loaded.device)


def one_tile_per_image(loaded: Loaded) -> bool:
    """Idefics3 splits no image into tiles: every image is one encoder input (SmolVLM at 512)."""
    ip = loaded.processor.image_processor
    if loaded.family != "idefics3":
        return False
    if not getattr(ip, "do_image_splitting", True):
        return True
    longest, tile = (ip.size or {}).get("longest_edge"), (getattr(ip, "max_image_size", None) or {}).get("longest_edge")
    return bool(longest and tile and longest <= tile)


def encode_distinct(loaded: Loaded, prompts: Sequence[str], images: Sequence[Sequence[Image.Image]],
                    padding_side: str, regions: dict[int, Region] | None = None):
    """`encode` with each distinct image (by identity) processed once, for `generate_encoded`
    to run the vision encoder once per distinct image: a page asked 4 questions went through
    the image processor and the vision encoder 4 times (policy), or 4 times beside its crops
    (reader). Measured: the vision encoder once per distinct image took the extract path on
    an H200 38.1 -> 42.4 pages/s (a first version, image processor still on every image);
    the image processor once per distinct image cut its CPU time per request 30.0 -> 20.0 ms
    (reader) and 15.6 -> 6.6 ms (policy) on 2 cores (`benchmarks/hf_encode.py`).

    Idefics3 with one tile per image only (`distinct_applies`): every image then stands for
    the same token block in the prompt, which is expanded here as the processor does, and
    the image processor gets the distinct images alone. Returns `pixel_values` `[D, 1, 3,
    H, W]` and `image_index`, the distinct image for each image of the prompts, in order;
    `input_ids` and each image's pixels are the processor's own (tested)."""
    processor = loaded.processor
    first: dict[int, int] = {}
    unique: list[Image.Image] = []
    index: list[int] = []
    for row in images:
        for image in row:
            k = first.setdefault(id(image), len(unique))
            if k == len(unique):
                unique.append(image)
            index.append(k)
    (ready,), device = _processor_images(loaded, [unique], regions)
    pixels = processor.image_processor([[image] for image in ready], return_tensors="pt",
                                       **({"device": device} if device is not None else {}))
    from transformers import BatchFeature

    images_in = {k: pixels[k] for k in ("pixel_values", "pixel_attention_mask") if k in pixels}
    batch = BatchFeature({**distinct_prompt_tokens(loaded, prompts, padding_side), **images_in,
                          "image_index": torch.tensor(index)})
    return batch.to(loaded.device).to(loaded.dtype)


def prompt_tokens(loaded: Loaded, prompts: Sequence[str], padding_side: str):
    """Every prompt tokenised with each image placeholder expanded as Idefics3's processor
    does at one tile per image (what the processor's call does for the text)."""
    processor, tok = loaded.processor, loaded.processor.tokenizer
    block = (processor.fake_image_token + processor.global_image_tag
             + processor.image_token * processor.image_seq_len + processor.fake_image_token)
    return tok([prompt.replace(processor.image_token, block) for prompt in prompts], padding=True,
               padding_side=padding_side, return_tensors="pt", add_special_tokens=_add_special(tok, prompts))


def distinct_prompt_tokens(loaded: Loaded, prompts: Sequence[str], padding_side: str) -> dict[str, torch.Tensor]:
    """`prompt_tokens` with each distinct prompt tokenised once (a batch asks a few questions
    of many pages: 2048 reader prompts ~300 -> ~2 ms on 2 cores) and its rows gathered: padded
    to the longest distinct prompt, which is the longest of all, every row is the same."""
    distinct = list(dict.fromkeys(prompts))
    row_of = {prompt: k for k, prompt in enumerate(distinct)}
    rows = torch.tensor([row_of[prompt] for prompt in prompts])
    return {k: v[rows] for k, v in prompt_tokens(loaded, distinct, padding_side).items()}


def distinct_applies(loaded: Loaded, prompts: Sequence[str], images: Sequence[Sequence[Any]]) -> bool:
    """Whether `encode_distinct` encodes this batch: Idefics3 at one tile per image, and each
    prompt holds one image placeholder per image of its row."""
    token = getattr(loaded.processor, "image_token", None)
    return (loaded.vision_once and one_tile_per_image(loaded) and bool(token)
            and all(hasattr(loaded.processor, a) for a in ("fake_image_token", "global_image_tag", "image_seq_len"))
            and any(images) and all(p.count(token) == len(row) for p, row in zip(prompts, images, strict=True)))


def _encoded_images(loaded: Loaded, pixels: torch.Tensor, mask: torch.Tensor | None, index: torch.Tensor) -> dict:
    """The model's keyword for pre-encoded images, holding the distinct images' features in
    the order of the prompts' image tokens (`index`). transformers 5.17 takes
    `image_hidden_states`, later 5.x `mm_encoder_outputs` (what its `generate` passes itself)."""
    import inspect

    model = unwrap(loaded.model)
    pooled = model.get_image_features(pixels, mask, return_dict=True).pooler_output
    # a tensor [D, tokens, hidden] (5.17) or one [tokens, hidden] per image (later)
    pooled = torch.stack(list(pooled)) if isinstance(pooled, (list, tuple)) else pooled
    features = pooled[index]
    params = inspect.signature(model.forward).parameters
    if "mm_encoder_outputs" in params:
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        return {"mm_encoder_outputs": {"image": BaseModelOutputWithPooling(pooler_output=features)}}
    if "image_hidden_states" in params:
        return {"image_hidden_states": features}
    raise TypeError(f"{type(model).__name__}.forward takes no pre-encoded images; set Loaded.vision_once = False")


def _ready(batch: Any) -> Any:
    if not isinstance(batch, Encoded):
        return batch
    current = torch.cuda.current_stream(batch.device)
    current.wait_event(batch.ready)
    for value in batch.batch.values():  # made on the side stream, used on this one: keep their memory
        if torch.is_tensor(value) and value.is_cuda:
            value.record_stream(current)
    return batch.batch


@dataclass
class Generated:
    tokens: torch.Tensor  # [B, T] generated ids (pads after the stop token)
    lengths: torch.Tensor  # [B] tokens up to and including the stop token (all T if none)
    ends: torch.Tensor  # [B] tokens before the stop token: the answer text's tokens
    token_logprobs: torch.Tensor | None  # [B, T] log p of each generated token (raw logits), 0 past `lengths`


@torch.no_grad()
def generate(loaded: Loaded, prompts: Sequence[str], images: Sequence[Sequence[Image.Image]], *,
             max_new_tokens: int, do_sample: bool = False, temperature: float = 1.0,
             num_return_sequences: int = 1, with_logprobs: bool = True) -> Generated:
    batch = encode(loaded, prompts, images, padding_side="left")
    return generate_encoded(loaded, batch, stops=sorted(stop_ids(loaded)), pad=pad_id(loaded),
                            max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature,
                            num_return_sequences=num_return_sequences, with_logprobs=with_logprobs)


@torch.no_grad()
def generate_encoded(loaded: Loaded, batch: Any, *, stops: Sequence[int], pad: int, max_new_tokens: int,
                     do_sample: bool = False, temperature: float = 1.0, num_return_sequences: int = 1,
                     with_logprobs: bool = True, static_cache: bool = False) -> Generated:
    """`generate` on a batch `encode`d beforehand (possibly in another thread); `stops` and
    `pad` come from `stop_ids` / `pad_id`, read by the caller: the tokenizer is not touched
    here, so encoding the next batch may run beside this call. `batch` may be `encode_ahead`'s.
    `static_cache`: a static KV cache, which transformers compiles into CUDA graphs on a GPU
    (no per-token Python; each new batch shape compiles once, see `DECODES`)."""
    batch = dict(_ready(batch))
    index = batch.pop("image_index", None)
    if index is not None:  # `encode_distinct`: each distinct image through the vision encoder once
        batch.update(_encoded_images(loaded, batch.pop("pixel_values"), batch.pop("pixel_attention_mask", None), index))
    kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=do_sample,
                                  num_return_sequences=num_return_sequences, pad_token_id=pad,
                                  eos_token_id=list(stops) or None,
                                  return_dict_in_generate=True, output_logits=with_logprobs)
    if do_sample:  # the plain temperature-scaled distribution, which the GRPO log-probs assume
        kwargs.update(temperature=temperature, top_k=0, top_p=1.0)
    else:
        kwargs.update(temperature=None, top_k=None, top_p=None)
    if static_cache:  # on CUDA transformers compiles the decode step then (CUDA graphs)
        kwargs["cache_implementation"] = "static"
    out = loaded.model.generate(**batch, **kwargs)
    tokens = out.sequences[:, batch["input_ids"].shape[1]:]
    lengths, ends = _lengths(tokens, set(stops))
    token_logprobs = None
    if with_logprobs and tokens.shape[1]:
        steps = []
        for t, logits in enumerate(out.logits):  # one [B, V] per step; log-softmax per step saves memory
            steps.append(torch.log_softmax(logits.float(), dim=-1).gather(1, tokens[:, t : t + 1]).squeeze(1))
        token_logprobs = torch.stack(steps, dim=1)
        token_logprobs = token_logprobs * _mask(lengths, tokens.shape[1]).to(token_logprobs.dtype)
    elif with_logprobs:
        token_logprobs = torch.zeros(tokens.shape, device=tokens.device)
    return Generated(tokens, lengths, ends, token_logprobs)


def _lengths(tokens: torch.Tensor, stops: set[int]) -> tuple[torch.Tensor, torch.Tensor]:
    width = tokens.shape[1]
    if not stops or width == 0:
        full = torch.full((tokens.shape[0],), width, device=tokens.device, dtype=torch.long)
        return full, full
    is_stop = torch.isin(tokens, torch.tensor(sorted(stops), device=tokens.device))
    first = torch.where(is_stop.any(1), is_stop.float().argmax(1), torch.full_like(is_stop[:, 0], width, dtype=torch.long))
    lengths = torch.clamp(first + 1, max=width)
    return lengths, first


def _mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


def unwrap(model):
    """The transformers model under a peft wrapper (its LoRA layers stay injected and active)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def continuation_logprobs(loaded: Loaded, prompts: Sequence[str], images: Sequence[Sequence[Image.Image]],
                          continuations: Sequence[Sequence[int]], *, temperature: float = 1.0,
                          grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced log p(continuation token | prompt, images, previous tokens).

    Returns `(token_logprobs [B, T], mask [B, T])`, T the longest continuation; entries past
    a row's continuation are 0 and masked out. Logits are divided by `temperature` (the
    distribution the tokens were sampled from). With `grad=True` the result is differentiable.
    """
    batch = encode(loaded, prompts, images, padding_side="right")
    ids, attention = batch["input_ids"], batch["attention_mask"]
    rows, width = ids.shape
    prompt_len = attention.sum(1)
    cont_len = torch.tensor([len(c) for c in continuations], device=ids.device)
    longest = int(cont_len.max()) if len(continuations) else 0
    total = int((prompt_len + cont_len).max())
    seq_keys = [k for k, v in batch.items() if torch.is_tensor(v) and v.dim() == 2 and v.shape == (rows, width)]
    new = {k: torch.full((rows, total), pad_id(loaded) if k == "input_ids" else 0, dtype=batch[k].dtype,
                         device=ids.device) for k in seq_keys}
    for i, cont in enumerate(continuations):
        n = int(prompt_len[i])
        cont_tensor = torch.as_tensor(list(cont), dtype=ids.dtype, device=ids.device)
        for k in seq_keys:
            new[k][i, :n] = batch[k][i, :n]
        new["input_ids"][i, n : n + len(cont)] = cont_tensor
        new["attention_mask"][i, : n + len(cont)] = 1
    inputs = {**{k: v for k, v in batch.items() if k not in seq_keys}, **new}

    mask = _mask(cont_len, longest)
    targets = torch.zeros((rows, longest), dtype=ids.dtype, device=ids.device)
    for i, cont in enumerate(continuations):
        targets[i, : len(cont)] = torch.as_tensor(list(cont), dtype=ids.dtype, device=ids.device)
    # Position p's hidden state predicts token p + 1: continuation token k sits at n + k.
    positions = (prompt_len[:, None] - 1 + torch.arange(longest, device=ids.device)[None, :]).clamp(max=total - 1)

    context = torch.enable_grad() if grad else torch.no_grad()
    with context:
        base = unwrap(loaded.model)
        inner = getattr(base, "model", None)
        head = base.get_output_embeddings()
        if inner is not None and head is not None:
            hidden = inner(**inputs, use_cache=False).last_hidden_state
            picked = hidden.gather(1, positions[:, :, None].expand(-1, -1, hidden.shape[-1]))
            logits = head(picked)
        else:  # unknown layout: full logits, then pick
            logits = loaded.model(**inputs, use_cache=False).logits
            logits = logits.gather(1, positions[:, :, None].expand(-1, -1, logits.shape[-1]))
        logprobs = torch.log_softmax(logits.float() / temperature, dim=-1)
        token_logprobs = logprobs.gather(2, targets[:, :, None]).squeeze(2) * mask
    return token_logprobs, mask
