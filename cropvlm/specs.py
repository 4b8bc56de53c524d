"""Build policies and readers from short spec strings, the way flows and the CLI name them.

    policy: full | center[@SIDE] | random[@SEED] | oracle[@MIN_AREA]
            default                  the trained heatmap policy shipped in the package
            heatmap:FOLDER           a heatmap policy folder (policy.onnx + config.json)
            hf:MODEL[@RESOLUTION][?adapter=PATH&batch_size=N...]   (cropvlm/hf/specs.py)
    reader: ocr:ENGINE[@BUDGET][+head=FOLDER]   (ENGINE rapidocr|rapidocr-spaced|tesseract; BUDGET
                                  pixels or "full"; +head=FOLDER: answers chosen by a trained answer head,
                                  +head=default the one shipped in the package; +head=none: the rules)
            hf:MODEL[@RESOLUTION][?batch_size=N...]
            openai:MODEL[@MAX_SIDE|full]   (any OpenAI-compatible chat API: OPENAI_BASE_URL,
                                            OPENAI_API_KEY from the environment)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cropvlm.errors import SpecError
from cropvlm.policies.base import Policy
from cropvlm.readers.base import Reader

DEFAULT_POLICY = "full"
# RapidOCR with its dropped word spaces put back: 0 answers lost against plain RapidOCR in
# 1,200 compared (reports/spaced_reader/README.md). Its answers chosen by the shipped answer
# head, trained on generated documents only, which rereads free text zoomed: ahead of the
# rules on real receipts and on generated invoices in six languages, a crop policy's box no
# longer lowers it, and its confidence is calibrated (README, "Current results").
DEFAULT_READER = "ocr:rapidocr-spaced@768+head=default"
NO_HEAD = "none"  # `+head=none`: no answer head
BUNDLED_HEAD_NAME = "default"  # `+head=default`: the shipped one
BUNDLED_POLICY = Path(__file__).resolve().parent / "heatmap" / "default_policy"
BUNDLED_HEAD = Path(__file__).resolve().parent / "answer_head" / "default_head"


def split_spec(spec: str) -> tuple[str, str | None]:
    """`"center@40"` -> `("center", "40")`; `"full"` -> `("full", None)`."""
    name, _, arg = spec.strip().partition("@")
    if not name:
        raise SpecError(f"empty spec {spec!r}")
    return name, (arg or None)


def build_policy(spec: str) -> Policy:
    from cropvlm.policies import baselines

    if spec.strip().startswith("hf:"):  # before split_spec: model paths may contain '@'
        from cropvlm.hf.specs import build_policy as build_hf_policy

        return build_hf_policy(spec)
    if spec.strip().startswith("heatmap:") or spec.strip() == "default":
        from cropvlm.heatmap.onnx_policy import HeatmapPolicy

        folder = spec.strip().partition(":")[2] or BUNDLED_POLICY
        return HeatmapPolicy(folder)
    name, arg = split_spec(spec)
    try:
        if name == "full" and arg is None:
            return baselines.FullPagePolicy()
        if name == "center":
            return baselines.CenterPolicy(float(arg) if arg else 50.0)
        if name == "random":
            return baselines.RandomPolicy(int(arg) if arg else 0)
        if name == "oracle":
            return baselines.OraclePolicy(float(arg) if arg else 0.04)
    except ValueError as exc:
        raise SpecError(f"bad policy spec {spec!r}: {exc}") from exc
    raise SpecError(f"unknown policy spec {spec!r}; known: full, center[@SIDE], random[@SEED], oracle, "
                    "default, heatmap:FOLDER, hf:MODEL")


@dataclass(frozen=True)
class OcrSpec:
    """`ocr:ENGINE[@BUDGET][+head=HEAD]` taken apart."""

    base: str  # "ocr:ENGINE@BUDGET" as written: what a trained head names as its reader
    engine: str
    budget: int | None  # pixels of the long side; None = full resolution
    head: str | None  # FOLDER, "default" or "none"; None when the spec names no head


def parse_ocr_spec(spec: str) -> OcrSpec | None:
    """The parts of an OCR reader spec; None for other readers."""
    base, plus, option = spec.strip().partition("+")
    kind, _, rest = base.partition(":")
    if kind != "ocr":
        return None
    engine, arg = split_spec(rest or "rapidocr")
    try:
        budget = None if arg == "full" else int(arg) if arg else 768
    except ValueError as exc:
        raise SpecError(f"bad reader budget in {spec!r}: use pixels or 'full'") from exc
    name, _, head = option.partition("=")
    if plus and (name != "head" or not head):
        raise SpecError(f"bad reader option {'+' + option!r} in {spec!r}: use +head=FOLDER, a head "
                        "folder written by `cropvlm train-head`")
    return OcrSpec(base, engine, budget, head or None)


def build_reader(spec: str) -> Reader:
    kind, _, rest = spec.strip().partition(":")
    if kind == "ocr":
        from cropvlm.readers.ocr import OcrReader

        ocr = parse_ocr_spec(spec)
        head = None
        if ocr.head not in (None, NO_HEAD):
            from cropvlm.answer_head.model import AnswerHead

            head = AnswerHead.load(BUNDLED_HEAD if ocr.head == BUNDLED_HEAD_NAME else ocr.head)
        return OcrReader(engine=ocr.engine, budget=ocr.budget, head=head)
    if kind == "hf":
        from cropvlm.hf.specs import build_reader as build_hf_reader

        return build_hf_reader(spec)
    if kind == "openai":
        from cropvlm.readers.openai_compat import reader_from_spec

        return reader_from_spec(rest)
    raise SpecError(
        f"unknown reader spec {spec!r}; known: ocr:rapidocr-spaced@768, ocr:rapidocr@768, ocr:tesseract@768, hf:MODEL, openai:MODEL[@MAX_SIDE]"
    )
