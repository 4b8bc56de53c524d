"""Spec strings for the Hugging Face backends, for `cropvlm.specs` to delegate to.

    reader: hf:MODEL[@RESOLUTION][?key=value&...]
    policy: hf:MODEL[@RESOLUTION][?adapter=PATH&key=value&...]

MODEL is a hub id (`HuggingFaceTB/SmolVLM-256M-Instruct`) or a local folder; the last `@`
starts the resolution (an integer, or `default`). Keys: `batch_size`, `max_new_tokens`,
`device`, `dtype`, `attn` (attn_implementation), `decode` (`dynamic`, or `static`: a
static KV cache that transformers compiles on CUDA, see `scoring.DECODES`) and, for the
policy, `adapter`.
Examples: `hf:/models/smolvlm@512?batch_size=128`,
`hf:HuggingFaceTB/SmolVLM-256M-Instruct@512?adapter=/policies/v7`.
Importing this module does not import torch; building a backend does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from cropvlm.errors import SpecError
from cropvlm.hf.loading import DECODES

_INT_KEYS = {"batch_size", "max_new_tokens"}
_STR_KEYS = {"device", "dtype", "attn", "decode"}
_CHOICES = {"decode": DECODES}


def parse(spec: str, *, allow_adapter: bool) -> tuple[str, dict[str, Any]]:
    """`"hf:MODEL@512?batch_size=8"` -> `("MODEL", {"resolution": 512, "batch_size": 8})`."""
    text = spec.strip()
    if not text.startswith("hf:") or len(text) == 3:
        raise SpecError(f"not an hf spec {spec!r}; use hf:MODEL[@RESOLUTION][?key=value&...]")
    body, _, query = text[3:].partition("?")
    model, at, resolution = body.rpartition("@")
    if not at:
        model, resolution = body, ""
    if not model:
        raise SpecError(f"hf spec {spec!r} names no model")
    kwargs: dict[str, Any] = {}
    if resolution and resolution != "default":
        try:
            kwargs["resolution"] = int(resolution)
        except ValueError as exc:
            raise SpecError(f"bad resolution in {spec!r}: use an integer or 'default'") from exc
    allowed = _INT_KEYS | _STR_KEYS | ({"adapter"} if allow_adapter else set())
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if key not in allowed:
            raise SpecError(f"unknown key {key!r} in {spec!r}; known: {sorted(allowed)}")
        if key in _INT_KEYS:
            try:
                kwargs[key] = int(value)
            except ValueError as exc:
                raise SpecError(f"{key} must be an integer in {spec!r}") from exc
        elif key in _CHOICES and value not in _CHOICES[key]:
            raise SpecError(f"{key} must be one of {list(_CHOICES[key])} in {spec!r}, got {value!r}")
        else:
            kwargs["attn_implementation" if key == "attn" else key] = value
    return model, kwargs


def build_reader(spec: str):
    model, kwargs = parse(spec, allow_adapter=False)
    from cropvlm.hf.reader import HfReader

    return HfReader(model, **kwargs)


def build_policy(spec: str):
    model, kwargs = parse(spec, allow_adapter=True)
    from cropvlm.hf.policy import HfPolicy

    return HfPolicy(model, **kwargs)
