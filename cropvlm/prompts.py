"""The paper's two prompts (CropVLM, arXiv 2511.19820), shared by every backend.

The question is used verbatim: no `str.capitalize()`, which would lowercase the rest of it
(a pitfall of the public code).
"""

READER_INSTRUCTION = "Give a very brief answer."
POLICY_INSTRUCTION = "Outline the region in the image that would help answer this question."


def reader_text(question: str) -> str:
    """Text of the reader's user turn; the images (page, then crop) come before it."""
    return f"{question}\n{READER_INSTRUCTION}"


def policy_text(question: str) -> str:
    """Text of the policy's user turn; the page image comes before it."""
    return f"{question}\n{POLICY_INSTRUCTION}"
