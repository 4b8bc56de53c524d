"""Which image processor a benchmark's saved tiny checkpoint runs with: PIL or torchvision.

The builders in `tests/cropvlm/tiny_models.py` save transformers' PIL image processor
(`...ImageProcessorPil`): torchvision does not import beside the CPU torch wheel the tests
use. A real checkpoint loads the torchvision one where torchvision is installed, and on a GPU
machine the difference dominates (a GRPO step on an H200: 12.4 s with PIL, 5.1 s with
torchvision), so the GPU benchmarks swap it in (`--image-processor`):

    from hf_image_processor import CHOICES, use_image_processor
    name = use_image_processor(reader.processor, "auto")  # -> "Idefics3ImageProcessor"
"""

from __future__ import annotations

import importlib.util

CHOICES = ("auto", "torchvision", "pil")
HELP = "auto: torchvision's when it imports (as a real checkpoint loads), else PIL's"
_NOT_SETTINGS = ("image_processor_type", "processor_class", "_processor_class", "backend")


def use_image_processor(processor, choice: str) -> str:
    """`torchvision`: replace `processor.image_processor`, a PIL one, by the torchvision one
    with the same settings; `auto`: that when torchvision imports; `pil`: keep it. In place
    (a loaded processor is shared by every reader and policy of its checkpoint). Returns the
    class in use."""
    if choice not in CHOICES:
        raise ValueError(f"image processor must be one of {CHOICES}, got {choice!r}")
    current = processor.image_processor
    name = type(current).__name__
    if choice == "pil" or not name.endswith("Pil"):
        return name
    if importlib.util.find_spec("torchvision") is None:
        if choice == "torchvision":
            raise SystemExit("--image-processor torchvision needs torchvision (pip install torchvision)")
        return name

    import transformers

    cls = getattr(transformers, name[: -len("Pil")], None)
    settings = {k: v for k, v in current.to_dict().items() if k not in _NOT_SETTINGS}
    try:
        processor.image_processor = cls(**settings)
    except Exception as exc:  # noqa: BLE001 - keep the PIL one, and say so
        if choice == "torchvision":
            raise SystemExit(f"--image-processor torchvision: {cls} failed with {type(exc).__name__}: {exc}")
        print(f"keeping {name}: {cls} failed with {type(exc).__name__}: {exc}", flush=True)
    return type(processor.image_processor).__name__
