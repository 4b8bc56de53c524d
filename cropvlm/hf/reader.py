"""`HfReader`: a frozen Hugging Face VLM that answers from the page and its crop.

The paper's reader prompt: one user turn, the original page first, the crop second, then
`"{Question}\\nGive a very brief answer."`. Without a crop the reader sees the page only.
Requests are batched across pages and questions (chunks of `batch_size`), greedy, left
padded. `score()` is the retraining reward: the exact teacher-forced log-likelihood of a
given answer's tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image

from cropvlm.hf import loading, prompts, scoring
from cropvlm.normalize import normalize_value
from cropvlm.readers.base import Answer, ReadRequest
from cropvlm.templates import FieldSpec


class HfReader:
    """Reader over any image-text-to-text checkpoint (hub id or local folder).

    path:           hub id or folder (`AutoProcessor` + `AutoModelForImageTextToText`)
    resolution:     the processor's image size (per family, see `cropvlm.hf.loading`); None keeps
                    the checkpoint's own
    device, dtype:  default CUDA + bf16 when present, else CPU + fp32
    batch_size:     requests per forward / generate call (gather many pages per call)
    max_new_tokens: answer length cap (16-32 is plenty for "a very brief answer")
    """

    def __init__(self, path: str, *, resolution: int | None = None, device: str | None = None,
                 dtype: str | None = None, batch_size: int = 32, max_new_tokens: int = 24,
                 attn_implementation: str | None = None) -> None:
        self.path = str(path)
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
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

    # --- answering ---------------------------------------------------------------------
    def answer(self, requests: Sequence[ReadRequest]) -> list[Answer]:
        answers: list[Answer] = []
        for start in range(0, len(requests), self.batch_size):
            answers.extend(self._answer_batch(requests[start : start + self.batch_size]))
        return answers

    def _answer_batch(self, requests: Sequence[ReadRequest]) -> list[Answer]:
        texts, images = self._inputs([r.page for r in requests], [r.crop for r in requests],
                                     [r.spec.question for r in requests])
        out = scoring.generate(self._loaded, texts, images, max_new_tokens=self.max_new_tokens)
        tokenizer = self._loaded.processor.tokenizer
        answers = []
        for i, request in enumerate(requests):
            end, length = int(out.ends[i]), int(out.lengths[i])
            text = tokenizer.decode(out.tokens[i, :end], skip_special_tokens=True).strip()
            # exp(mean log p) over the answer's tokens and its stop token: how sure the model
            # is of this answer and that it ends here.
            mean = float(out.token_logprobs[i, :length].sum()) / max(length, 1)
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
