"""`HfReader`: a frozen Hugging Face VLM that answers from the page and its crop.

The paper's reader prompt: one user turn, the original page first, the crop second, then
`"{Question}\\nGive a very brief answer."`. Without a crop the reader sees the page only.
Requests are batched across pages and questions (chunks of `batch_size`), greedy, left
padded. With several chunks, `prefetch` encodes chunk N + 1 (chat template, image
preprocessing: the CPU side) in one background thread while the model generates for chunk N.
`score()` is the retraining reward: the exact teacher-forced log-likelihood of a given
answer's tokens.

`budget` and `input_size` say how big the images reach the model (the evaluation's pixels
per answer); `below_default` whether a set resolution is smaller than the checkpoint's own
processor settings, the most it is configured for (the evaluation's full-resolution row).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import cached_property, partial
from typing import Any

import torch
from PIL import Image

from cropvlm.crops import budget_size
from cropvlm.hf import loading, prompts, scoring
from cropvlm.jobs import Job, run_jobs
from cropvlm.normalize import normalize_value
from cropvlm.readers.base import Answer, ReadRequest
from cropvlm.templates import FieldSpec

REFERENCE_PAGE = (1240, 1754)  # an A4 page at 150 dpi (the extract default): compares resolutions


class HfReader:
    """Reader over any image-text-to-text checkpoint (hub id or local folder).

    path:           hub id or folder (`AutoProcessor` + `AutoModelForImageTextToText`)
    resolution:     the processor's image size (per family, see `cropvlm.hf.loading`); None keeps
                    the checkpoint's own
    device, dtype:  default CUDA + bf16 when present, else CPU + fp32
    batch_size:     requests per forward / generate call (gather many pages per call)
    max_new_tokens: answer length cap (16-32 is plenty for "a very brief answer")
    prefetch:       encode the next chunk in a background thread while the model runs (same
                    answers; holds one more chunk's inputs on the device)
    """

    def __init__(self, path: str, *, resolution: int | None = None, device: str | None = None,
                 dtype: str | None = None, batch_size: int = 32, max_new_tokens: int = 24,
                 attn_implementation: str | None = None, prefetch: bool = True, decode: str = "dynamic") -> None:
        self.path = str(path)
        self.decode = scoring.check_decode(decode)
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.prefetch = bool(prefetch)
        self._loaded = loading.load(self.path, device=device, dtype=dtype, resolution=resolution,
                                    attn_implementation=attn_implementation)
        res = "default" if resolution is None else str(resolution)
        self.version = f"hf:{self._loaded.name}@{res}#{self._loaded.fingerprint}"

    @property
    def model(self):
        return self._loaded.model

    @property
    def processor(self):
        return self._loaded.processor

    @property
    def resolution(self) -> int | None:
        """As given (None: the checkpoint's own processor settings)."""
        return self._loaded.resolution

    # --- input size --------------------------------------------------------------------
    @property
    def budget(self) -> int | None:
        """Long side in pixels every image is resized to, as OcrReader's budget: Idefics3's
        `longest_edge`, LLaVA's square; None where there is none (Qwen2-VL caps the pixel
        count and keeps the aspect ratio; other families: unknown). See `input_size`."""
        return _long_side(self._loaded.family, self.processor.image_processor)

    def input_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) at which an image of `size` reaches the model."""
        return _input_size(self._loaded.family, self.processor.image_processor, size)

    @cached_property
    def below_default(self) -> bool:
        """Whether `resolution` shows the model fewer pixels of a page than the checkpoint's
        own processor settings would (read from its folder or hub cache, no model load)."""
        if self.resolution is None:
            return False
        default = type(self.processor.image_processor).from_pretrained(self.path)
        family = self._loaded.family
        return math.prod(self.input_size(REFERENCE_PAGE)) < math.prod(_input_size(family, default, REFERENCE_PAGE))

    # --- answering ---------------------------------------------------------------------
    def answer(self, requests: Sequence[ReadRequest]) -> list[Answer]:
        answers: list[Answer] = []
        run_jobs(self.jobs(requests, answers), prefetch=self.prefetch)
        return answers

    def jobs(self, requests: Sequence[ReadRequest], out: list[Answer]) -> Iterator[Job]:
        """`answer` as model calls of `batch_size` requests (see `cropvlm.jobs`): each
        call's answers are appended to `out` in order as it finishes."""
        # Token ids read here, before any prefetch thread, and answers decoded in `finish`:
        # a fast tokenizer used from two threads at once can fail with "Already borrowed".
        stops, pad = sorted(scoring.stop_ids(self._loaded)), scoring.pad_id(self._loaded)

        def encode(start: int, chunk: Sequence[ReadRequest]):
            try:
                texts, images = self._inputs([r.page for r in chunk], [r.crop for r in chunk],
                                             [r.spec.question for r in chunk])
                regions = {id(r.crop): (r.page, r.crop_box) for r in chunk if r.crop is not None and r.crop_box}
                return scoring.encode_ahead(self._loaded, texts, images, padding_side="left", regions=regions)
            except Exception as exc:  # re-raised as is; the note says which requests
                exc.add_note(f"HfReader: encoding requests {start}-{start + len(chunk) - 1} "
                             f"(of {len(requests)}) failed")
                raise

        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            yield Job(partial(encode, start, chunk), partial(self._generate, stops=stops, pad=pad),
                      lambda generated, chunk=chunk: out.extend(self._decode(chunk, generated)), name="reader")

    @torch.no_grad()
    def _generate(self, batch: Any, stops: list[int], pad: int) -> scoring.Generated:
        return scoring.generate_encoded(self._loaded, batch, stops=stops, pad=pad,
                                        max_new_tokens=self.max_new_tokens, static_cache=self.decode == "static")

    def _decode(self, requests: Sequence[ReadRequest], out: scoring.Generated) -> list[Answer]:
        tokenizer = self._loaded.processor.tokenizer
        # one copy off the device per chunk, not one per row and field
        tokens, ends, lengths, logprobs = (t.cpu() for t in (out.tokens, out.ends, out.lengths, out.token_logprobs))
        answers = []
        for i, request in enumerate(requests):
            end, length = int(ends[i]), int(lengths[i])
            text = tokenizer.decode(tokens[i, :end], skip_special_tokens=True).strip()
            # exp(mean log p) over the answer's tokens and its stop token: how sure the model
            # is of this answer and that it ends here.
            mean = float(logprobs[i, :length].sum()) / max(length, 1)
            confidence = min(max(math.exp(mean), 0.0), 1.0)
            answers.append(Answer(text=text, value=normalize_value(text, request.spec.type) if text else None,
                                  confidence=confidence, source="vlm"))
        return answers

    def _inputs(self, pages: Sequence[Image.Image], crops: Sequence[Image.Image | None],
                questions: Sequence[str | FieldSpec]) -> tuple[list[str], list[list[Image.Image]]]:
        texts, images = [], []
        for page, crop, question in zip(pages, crops, questions, strict=True):
            q = question.question if isinstance(question, FieldSpec) else str(question)
            row = [page] if crop is None else [page, crop]
            texts.append(prompts.render(self._loaded.processor, prompts.reader_text(q), len(row)))
            images.append(row)
        return texts, images

    # --- reward ------------------------------------------------------------------------
    def score(self, pages: Sequence[Image.Image], crops: Sequence[Image.Image | None],
              questions: Sequence[str | FieldSpec], answers: Sequence[str], *, reduction: str = "sum",
              include_eos: bool = False) -> list[float]:
        """Log-likelihood of each given answer under the reader, teacher-forced.

        Only the answer's tokens count (tokenised on their own, no special tokens; the stop
        token too with `include_eos`); `reduction="mean"` divides by their number. Padding
        does not change the result: each row is scored exactly as it would be alone.
        """
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        if not (len(pages) == len(crops) == len(questions) == len(answers)):
            raise ValueError("pages, crops, questions and answers must have the same length")
        tokenizer = self._loaded.processor.tokenizer
        stop = getattr(tokenizer, "eos_token_id", None)
        if include_eos and stop is None:
            stop = min(scoring.stop_ids(self._loaded))
        results: list[float] = []
        for start in range(0, len(pages), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            texts, images = self._inputs(pages[chunk], crops[chunk], questions[chunk])
            conts = [list(tokenizer(a, add_special_tokens=False)["input_ids"]) + ([stop] if include_eos else [])
                     for a in answers[chunk]]
            if any(not c for c in conts):
                raise ValueError("an empty answer has no tokens to score; use include_eos=True")
            token_lp, mask = scoring.continuation_logprobs(self._loaded, texts, images, conts)
            sums = token_lp.sum(1)
            if reduction == "mean":
                sums = sums / mask.sum(1).clamp(min=1)
            results.extend(float(s) for s in sums.cpu())
        return results


def _long_side(family: str, image_processor: Any) -> int | None:
    if family == "idefics3":
        return int(image_processor.size["longest_edge"])
    if family == "llava" and getattr(image_processor, "do_center_crop", False):
        return max(image_processor.crop_size["height"], image_processor.crop_size["width"])
    return None


def _input_size(family: str, image_processor: Any, size: tuple[int, int]) -> tuple[int, int]:
    """What the family's image processor does to an image's size (Idefics3 then fits the
    resized image to whole encoder tiles: that rounding is not counted)."""
    if family == "qwen2_vl":
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        ip = image_processor
        height, width = smart_resize(size[1], size[0], factor=ip.patch_size * ip.merge_size,
                                     min_pixels=ip.size["shortest_edge"], max_pixels=ip.size["longest_edge"])
        return (width, height)
    if family == "llava" and getattr(image_processor, "do_center_crop", False):
        return (image_processor.crop_size["width"], image_processor.crop_size["height"])
    return budget_size(size, _long_side(family, image_processor))
