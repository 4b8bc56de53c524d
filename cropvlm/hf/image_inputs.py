"""The images a processor call gets, and where its image processor runs.

A batch asks several questions of each page, so the same page image comes once per field
(4x in the extract benchmark), and the processor would resize the full-resolution page each
time: on a 150 dpi A4 page that resize is most of the processor's CPU time, and on a GPU the
processor's CPU time is what the model waits for. `shrink_once` therefore resizes each
distinct image once per call, *to the size the processor itself would resize it to* with
its own resampling filter, so the processor's own resize is a same-size copy:

    idefics3: transformers' own `get_resize_output_image_size` for `size["longest_edge"]`
              (truncation and even sides included), the processor's resample (LANCZOS);
    qwen2_vl: `smart_resize` with the processor's factor and pixel bounds, its resample
              (BICUBIC);
    others:   untouched (LLaVA resizes then centre-crops: nothing large to save).

With the PIL image processor the pixels are exactly those of the processor alone (tested);
images are only ever made smaller, never zoomed (a crop is zoomed by the processor as before).
Only where the image processor runs on the CPU: on the GPU its resize is free.

`processor_device`: a torchvision-backed image processor can run on the model's GPU
(`device=` in the processor call); `Loaded.image_device` chooses ("auto": the model's device
when the image processor is torchvision-backed, else the CPU; "cpu": always the CPU). On an
H100 this doubled the extract path's throughput (12.7 -> 27.0 pages/s, reports/gpu_throughput).
On CUDA transformers resizes with BICUBIC where the checkpoint asks for LANCZOS (it warns):
pixels differ slightly from CPU processing.

`device_images`: where the image processor runs on the GPU, what is left on the CPU is
turning PIL images into tensors: transformers copies every image to an array, permutes it to
channels-first with a strided copy and uploads it, once per *request* (every field of a page,
and the reader's page and crop). Here each distinct page is converted and uploaded once per
call (channels-first by a view, the copy runs on the GPU), and a crop whose page region is
known (`ReadRequest.crop_box`) is a slice of its page's tensor: no CPU copy at all. Pixels are
those of the PIL images (tested); the processor gets channels-first uint8 tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

MIN_IMAGE_SIDE = 28  # smaller crops are upscaled (Qwen2-VL's patch grid needs at least this)


def prepare_image(image: Image.Image) -> Image.Image:
    image = image if image.mode == "RGB" else image.convert("RGB")
    w, h = image.size
    if min(w, h) >= MIN_IMAGE_SIDE:
        return image
    scale = MIN_IMAGE_SIDE / min(w, h)
    return image.resize((max(MIN_IMAGE_SIDE, round(w * scale)), max(MIN_IMAGE_SIDE, round(h * scale))))


class _Shape:
    """What transformers' size helpers read of an image: `.shape` (channels first)."""

    def __init__(self, width: int, height: int) -> None:
        self.shape = (3, height, width)


def processor_size(family: str, image_processor: Any, size: tuple[int, int]) -> tuple[int, int] | None:
    """(width, height) the family's image processor resizes an image of `size` to before
    anything else, or None where this is not known (then nothing is shrunk)."""
    ip = image_processor
    if not getattr(ip, "do_resize", True):
        return None
    sizes = ip.size  # a dict or transformers' SizeDict: both have .get
    width, height = size
    if family == "idefics3" and sizes.get("longest_edge"):
        from transformers.models.idefics3.image_processing_pil_idefics3 import get_resize_output_image_size

        h, w = get_resize_output_image_size(_Shape(width, height), resolution_max_side=sizes["longest_edge"])
        return (w, h)
    if family == "qwen2_vl" and sizes.get("shortest_edge") and sizes.get("longest_edge"):
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        h, w = smart_resize(height, width, factor=ip.patch_size * ip.merge_size,
                            min_pixels=sizes["shortest_edge"], max_pixels=sizes["longest_edge"])
        return (w, h)
    return None


def shrink_once(loaded: Any, rows: Sequence[Sequence[Image.Image]]) -> list[list[Image.Image]]:
    """`rows` of images as the processor should get them: RGB, and each distinct image (by
    identity: the same page object for every field of the page) shrunk once to the
    processor's own resize target where that is smaller. The same input object maps to the
    same output object."""
    done: dict[int, Image.Image] = {}
    ip = loaded.processor.image_processor
    # On the GPU the processor's resize costs nothing, and a PIL resize first would put CPU
    # work back in front of it (measured on an H100: 27.0 -> 22.6 pages/s).
    shrink = loaded.shrink_images and processor_device(loaded) is None
    resample = getattr(ip, "resample", None)

    def one(image: Image.Image) -> Image.Image:
        key = id(image)
        if key not in done:
            ready = prepare_image(image)
            target = processor_size(loaded.family, ip, ready.size) if shrink else None
            if target and target[0] <= ready.width and target[1] <= ready.height and target != ready.size:
                ready = ready.resize(target, Image.Resampling(int(resample)) if resample is not None
                                     else Image.Resampling.BICUBIC)
            done[key] = ready
        return done[key]

    return [[one(image) for image in row] for row in rows]


def processor_device(loaded: Any) -> Any | None:
    """Where the image processor runs: the model's device for a torchvision-backed image
    processor unless `loaded.image_device == "cpu"`; None (its default, the CPU) otherwise."""
    backend = getattr(loaded.processor.image_processor, "backend", None)
    if loaded.image_device == "cpu" or backend != "torchvision" or loaded.device.type == "cpu":
        return None
    return loaded.device


Region = tuple[Image.Image, tuple[int, int, int, int]]  # (page, pixel box left, top, right, bottom)


def device_images(rows: Sequence[Sequence[Image.Image]], device: Any,
                  regions: dict[int, Region] | None = None) -> list[list[Any]]:
    """`rows` as channels-first uint8 tensors on `device`: each distinct image (by identity)
    converted once; an image whose `id` is in `regions` (a crop cut from a page at a pixel
    box) sliced from its page's tensor when the box matches its size and is not too small for
    `prepare_image` to enlarge. The same input object maps to the same tensor."""
    import torch

    done: dict[int, Any] = {}
    regions = regions or {}

    def one(image: Image.Image):
        key = id(image)
        if key not in done:
            page, (left, top, right, bottom) = regions.get(key, (None, (0, 0, 0, 0)))
            if (page is not None and image.size == (right - left, bottom - top)
                    and min(image.size) >= MIN_IMAGE_SIDE and 0 <= left and 0 <= top
                    and right <= page.width and bottom <= page.height):
                done[key] = one(page)[:, top:bottom, left:right]
            else:  # np.array: one writable copy; the permute is a view, made contiguous on the device
                done[key] = torch.from_numpy(np.array(prepare_image(image))).to(device).permute(2, 0, 1)
        return done[key]

    return [[one(image) for image in row] for row in rows]
