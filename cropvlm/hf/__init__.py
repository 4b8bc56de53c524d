"""Hugging Face backends: `HfReader` (frozen VLM reader) and `HfPolicy` (box-generating VLM).

Needs the `gpu` extra (torch, transformers>=5, peft, accelerate). Importing this package is
cheap: torch and transformers load when `HfReader` / `HfPolicy` are first touched, so the
rest of cropvlm works without them.

    from cropvlm.hf import HfReader, HfPolicy
    reader = HfReader("HuggingFaceTB/SmolVLM-256M-Instruct", resolution=512)
    policy = HfPolicy("HuggingFaceTB/SmolVLM-256M-Instruct", adapter="runs/lora-42", resolution=512)
"""

from __future__ import annotations

__all__ = ["HfPolicy", "HfReader", "PolicySamples"]


def __getattr__(name: str):
    if name == "HfReader":
        from cropvlm.hf.reader import HfReader

        return HfReader
    if name in ("HfPolicy", "PolicySamples"):
        from cropvlm.hf import policy

        return getattr(policy, name)
    raise AttributeError(f"module 'cropvlm.hf' has no attribute {name!r}")
