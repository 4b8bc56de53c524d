"""Chat-completions messages and responses for the OpenAI-compatible reader.

Builds the paper's reader prompt with images as base64 data URLs, and reads the answer
text and token log-probabilities back out of a response body.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

from PIL import Image

from cropvlm.crops import resize_long_side
from cropvlm.errors import ReaderError
from cropvlm.prompts import reader_text
from cropvlm.readers.base import ReadRequest

READER_PROMPT = reader_text("{question}")  # the paper's reader prompt, shared with the HF reader
NO_LOGPROB_CONFIDENCE = 0.5  # a non-empty answer from a server that returns no log-probs
IMAGE_FORMATS = {"jpeg": "image/jpeg", "png": "image/png"}


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- images and prompt -----------------------------------------------------------------


def resize_for_reader(image: Image.Image, max_side: int | None, upscale: bool = False) -> Image.Image:
    """RGB, long side shrunk to `max_side` (or also zoomed up to it when `upscale`)."""
    if max_side is not None and max(image.size) < max_side and not upscale:
        max_side = None  # small enough already: send it as it is
    return resize_long_side(image, max_side)


def image_data_url(image: Image.Image, image_format: str = "jpeg", jpeg_quality: int = 90) -> str:
    """`data:image/jpeg;base64,...` (or PNG) of an image as it is."""
    buffer = io.BytesIO()
    if image_format == "jpeg":
        image.save(buffer, format="JPEG", quality=jpeg_quality)
    else:
        image.save(buffer, format="PNG")
    return f"data:{IMAGE_FORMATS[image_format]};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def has_usable_crop(request: ReadRequest) -> bool:
    crop = request.crop
    return crop is not None and crop.width >= 2 and crop.height >= 2


def build_messages(question: str, page_url: str, crop_url: str | None, detail: str | None = None) -> list[dict]:
    """The paper's reader prompt: [page, crop, question + instruction] in one user turn."""

    def image_part(url: str) -> dict:
        image_url: dict[str, str] = {"url": url}
        if detail is not None:
            image_url["detail"] = detail
        return {"type": "image_url", "image_url": image_url}

    content = [image_part(page_url)]
    if crop_url is not None:
        content.append(image_part(crop_url))
    content.append({"type": "text", "text": READER_PROMPT.format(question=question)})
    return [{"role": "user", "content": content}]


# --- responses -------------------------------------------------------------------------


def parse_completion(body: Any) -> tuple[str, list[float] | None]:
    """(answer text stripped, token log-probs or None) from a chat-completions body."""
    if not isinstance(body, dict):
        raise ReaderError(f"chat completion is not a JSON object: {str(body)[:200]!r}")
    if body.get("error"):
        error = body["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise ReaderError(f"chat completion returned an error: {str(message)[:300]}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ReaderError(f"chat completion has no choices: {str(body)[:200]!r}")
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    text = content.strip() if isinstance(content, str) else ""
    logprobs = None
    entries = (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
    if isinstance(entries, list):
        values = [e.get("logprob") for e in entries if isinstance(e, dict)]
        values = [float(v) for v in values if is_number(v)]
        logprobs = values or None
    return text, logprobs


def confidence_of(text: str, logprobs: list[float] | None) -> float:
    """exp(mean token log-prob) in [0, 1]; NO_LOGPROB_CONFIDENCE without log-probs; 0 if empty."""
    if not text:
        return 0.0
    if not logprobs:
        return NO_LOGPROB_CONFIDENCE
    return min(1.0, max(0.0, math.exp(sum(logprobs) / len(logprobs))))
