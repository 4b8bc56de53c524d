"""The paper's prompts (CropVLM, arXiv 2511.19820), rendered with the checkpoint's chat template.

One user turn; the images come first (reader: original page, then the crop; policy: the
page), then the text. The question is used verbatim: no `str.capitalize()`, which would
lowercase the rest of it (a pitfall of the public code).
"""

from __future__ import annotations

from typing import Any

from cropvlm.prompts import POLICY_INSTRUCTION, READER_INSTRUCTION, policy_text, reader_text  # noqa: F401


def user_turn(text: str, num_images: int) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "image"} for _ in range(num_images)]
    content.append({"type": "text", "text": text})
    return [{"role": "user", "content": content}]


def render(processor, text: str, num_images: int) -> str:
    """The prompt string up to the assistant's turn (`add_generation_prompt=True`)."""
    if not getattr(processor, "chat_template", None):
        raise ValueError("the checkpoint's processor has no chat template; save one with the processor")
    return processor.apply_chat_template(user_turn(text, num_images), add_generation_prompt=True, tokenize=False)
