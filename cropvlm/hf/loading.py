"""Load an image-text-to-text checkpoint once per worker: processor, model, resolution, version.

Families and what "resolution" means for each (the reader's / policy's input size):

    idefics3 (SmolVLM, Idefics3): `image_processor.size = {"longest_edge": N}`. The encoder sees
        tiles of `max_image_size` (SmolVLM: 512); N <= that gives one tile per image (SmolVLM-256M:
        64 tokens), N = k * 512 splits an image into up to k x k tiles plus a global view. The
        paper's policy runs at 512.
    qwen2_vl (Qwen2-VL, Qwen2.5-VL): a pixel budget, `max_pixels = N * N` (the image keeps its
        aspect ratio; tokens = pixels / 28^2); `min_pixels` is lowered to at most that.
    llava (LLaVA-1.5): fixed by the vision tower (`vision_config.image_size`, 336 for 1.5);
        the setting must be None or equal to it.

torch and transformers are imported inside functions only, so `import cropvlm.hf` is cheap.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAMILIES = ("idefics3", "qwen2_vl", "llava")
_MODEL_TYPES = {
    "idefics3": "idefics3", "smolvlm": "idefics3", "idefics2": "idefics3",
    "qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_vl",
    "llava": "llava", "llava_next": "llava",
}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


@dataclass
class Loaded:
    """A loaded checkpoint: share it, don't copy it (one per worker and key)."""

    model: Any  # PreTrainedModel (or PeftModel), eval mode
    processor: Any  # ProcessorMixin; tokenizer padding side is set per call
    family: str  # one of FAMILIES, or the config's model_type for others
    device: Any  # torch.device
    dtype: Any  # torch.dtype
    resolution: int | None
    name: str  # short name: the folder's or hub id's last part
    fingerprint: str  # short hash of the checkpoint (config + weights sizes, or revision)
    # How images reach the processor (see cropvlm.hf.image_inputs): each distinct page shrunk
    # once to the processor's own resize target; a torchvision image processor on the
    # model's device ("auto") or on the CPU ("cpu"); there, each distinct page converted to a
    # tensor on the device once per call and crops sliced from it (`image_tensors`).
    shrink_images: bool = True
    image_device: str = "auto"
    image_tensors: bool = True
    # CUDA: inputs encoded ahead (prefetch) on a side stream, not behind generate (scoring.encode_ahead)
    side_stream: bool = True
    # Idefics3, one tile per image: each distinct image processed and encoded once per call (scoring.encode_distinct)
    vision_once: bool = True


# How `generate` decodes (`scoring.generate_encoded`): "dynamic" (transformers' default cache,
# eager) or "static" (a static KV cache; on CUDA transformers compiles the decode step with
# torch.compile and CUDA graphs). Same tokens (tested); one H200, SmolVLM-256M-sized policy
# and reader: 65.7 -> 84.4 pages/s, after a compile of ~140 s per process (~40 s with a warm
# inductor cache) and once more per new batch shape. reports/gpu_throughput.
DECODES = ("dynamic", "static")

_CACHE: dict[tuple, Loaded] = {}
_LOCK = threading.Lock()


def resolve_device(device: str | None = None):
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | None, device) -> Any:
    """`auto`: bf16 on CUDA, fp32 on CPU (CPU bf16 is slow and loses the score's precision)."""
    import torch

    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
            "fp32": torch.float32, "float32": torch.float32}[str(dtype)]


def family_of(config) -> str:
    model_type = getattr(config, "model_type", "")
    return _MODEL_TYPES.get(model_type, model_type)


def short_name(path: str) -> str:
    return Path(str(path).rstrip("/")).name or str(path)


def local_folder(path: str) -> Path | None:
    """The folder holding the checkpoint's files: the path itself or its hub cache snapshot."""
    if os.path.isdir(path):
        return Path(path)
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(path, "config.json")
    except Exception:  # noqa: BLE001 - not a hub id, or no cache
        return None
    return Path(found).parent if isinstance(found, str) else None


SAMPLED_BLOCKS = 64  # weight files: size + this many 64 KiB blocks spread over the file
BLOCK = 1 << 16


def fingerprint(path: str, *, content: bool = False, files: tuple[str, ...] = ("config.json",)) -> str:
    """Short hash identifying a checkpoint folder.

    `files` are hashed by content; weight files by name, size and 64 blocks of 64 KiB
    sampled evenly over the file (4 MiB read per file, whatever its size: two checkpoints of
    one architecture differ in almost every block); `content=True` hashes weight files in
    full (adapters, which are small). A hub cache snapshot adds its revision to the digest.
    """
    folder = local_folder(path)
    digest = hashlib.sha256()
    if folder is None:
        digest.update(str(path).encode())
        return digest.hexdigest()[:10]
    if folder.parent.name == "snapshots":
        digest.update(folder.name.encode())  # the revision
    for name in files:
        file = folder / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes())
    for file in sorted(folder.iterdir()):
        if file.is_file() and file.name.endswith(WEIGHT_SUFFIXES):
            size = file.stat().st_size
            digest.update(file.name.encode() + b"\0" + str(size).encode())
            with file.open("rb") as fh:
                if content or size <= SAMPLED_BLOCKS * BLOCK:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
                else:
                    step = (size - BLOCK) // (SAMPLED_BLOCKS - 1)
                    for i in range(SAMPLED_BLOCKS):
                        fh.seek(i * step)
                        digest.update(fh.read(BLOCK))
    return digest.hexdigest()[:10]


def apply_resolution(processor, family: str, resolution: int | None, config) -> None:
    """Set the processor's image size in place (see the module docstring per family)."""
    if resolution is None:
        return
    resolution = int(resolution)
    if resolution <= 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    ip = processor.image_processor
    if family == "idefics3":
        ip.size = {"longest_edge": resolution}
    elif family == "qwen2_vl":
        budget = resolution * resolution
        size = dict(ip.size or {})
        low = min(int(size.get("shortest_edge") or getattr(ip, "min_pixels", None) or budget), budget)
        ip.size = {"shortest_edge": low, "longest_edge": budget}  # transformers 5: pixels, not edges
        for name, value in (("min_pixels", low), ("max_pixels", budget)):
            if name in vars(ip):  # older processors keep the budget in these attributes
                setattr(ip, name, value)
    elif family == "llava":
        fixed = config.vision_config.image_size
        if resolution != fixed:
            raise ValueError(f"LLaVA's resolution is fixed by its vision tower at {fixed}, got {resolution}")
    else:
        raise ValueError(f"no resolution setting known for model family {family!r}; leave it unset")


def load(path: str, *, device: str | None = None, dtype: str | None = None, resolution: int | None = None,
         adapter: str | None = None, trainable: bool = False, cache: bool = True,
         attn_implementation: str | None = None) -> Loaded:
    """Load (or reuse) the processor and model of `path`; `adapter` wraps it in a peft LoRA.

    A model with an adapter, or a trainable one, is never shared: peft injects layers into
    the model it wraps, and training changes weights.
    """
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    key = (str(path), str(dev), str(torch_dtype), resolution, attn_implementation)
    shareable = cache and adapter is None and not trainable
    with _LOCK:
        if shareable and key in _CACHE:
            return _CACHE[key]
        loaded = _load_uncached(path, dev, torch_dtype, resolution, adapter, trainable, attn_implementation)
        if shareable:
            _CACHE[key] = loaded
        return loaded


def _load_uncached(path, dev, torch_dtype, resolution, adapter, trainable, attn_implementation) -> Loaded:
    from transformers import AutoConfig, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(path)
    family = family_of(config)
    processor = load_processor(path, family)
    apply_resolution(processor, family, resolution, config)
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForImageTextToText.from_pretrained(path, **kwargs).to(dev)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, is_trainable=trainable).to(dev)
    model.eval()  # no dropout, also while training (GRPO log-probs must match sampling)
    if not trainable:
        model.requires_grad_(False)
    return Loaded(model, processor, family, dev, torch_dtype, resolution, short_name(path), fingerprint(path))


def load_processor(path: str, family: str):
    """`AutoProcessor`, or an image-only processor where the family insists on a video
    processor that cannot load here (Qwen2-VL's needs torchvision)."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(path)
    except (ImportError, AttributeError, ValueError, OSError, TypeError) as exc:
        if family != "qwen2_vl":
            raise
        first_error = exc
    try:
        return image_only_qwen2_vl_processor_class().from_pretrained(path)
    except Exception as exc:  # noqa: BLE001
        raise exc from first_error


_IMAGE_ONLY: dict[str, type] = {}


def image_only_qwen2_vl_processor_class():
    """Qwen2VLProcessor without a video processor (built lazily: transformers is optional)."""
    if "qwen2_vl" in _IMAGE_ONLY:
        return _IMAGE_ONLY["qwen2_vl"]
    from transformers import Qwen2VLProcessor
    from transformers.processing_utils import ProcessorMixin

    class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
        """Qwen2-VL / Qwen2.5-VL processor for images only; saves as a plain Qwen2VLProcessor."""

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
            self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
            self.image_token_id = getattr(tokenizer, "image_token_id", None) or tokenizer.convert_tokens_to_ids(
                self.image_token
            )
            self.video_token_id = getattr(tokenizer, "video_token_id", None) or tokenizer.convert_tokens_to_ids(
                self.video_token
            )
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

        def to_dict(self):
            data = super().to_dict()
            data["processor_class"] = "Qwen2VLProcessor"
            return data

    _IMAGE_ONLY["qwen2_vl"] = ImageOnlyQwen2VLProcessor
    return ImageOnlyQwen2VLProcessor


def __getattr__(name: str):
    if name == "ImageOnlyQwen2VLProcessor":
        return image_only_qwen2_vl_processor_class()
    raise AttributeError(name)
