"""What the GPU benchmarks run on: random-weight SmolVLM-sized checkpoints, synthetic pages,
the four fields asked of every page, and a policy that stands in a fixed box where a
random-weight model's output does not parse. Shared by `gpu_extract.py` and `gpu_grpo.py`
(which puts `tests/cropvlm`, home of `tiny_models`, on the path)."""

from __future__ import annotations

import time
from pathlib import Path

FIELDS_PER_PAGE = 4
# Where a trained policy looks for each field of `fields()` (percent of the page, 3-8 % of it);
# used in place of a random-weight policy's unparsable output (`--boxes fixed`).
FIXED_BOXES = {"total": (50.0, 62.0, 96.0, 76.0), "date": (50.0, 4.0, 96.0, 14.0),
               "number": (50.0, 12.0, 96.0, 22.0), "vendor": (4.0, 2.0, 60.0, 12.0)}


def policy_class():
    """`HfPolicy` that, with `fixed_boxes`, proposes `FIXED_BOXES[field]` where its output does
    not parse (the proposal stays marked invalid, so the count is still reported)."""
    from cropvlm.box import Box
    from cropvlm.hf import HfPolicy
    from cropvlm.policies.base import Proposal

    class FixedBoxWhereInvalid(HfPolicy):
        fixed_boxes = True

        def proposal(self, text, request):
            proposal = super().proposal(text, request)
            if proposal.box is None and self.fixed_boxes:
                return Proposal(Box(*FIXED_BOXES[request.field]), text, valid=False)
            return proposal

    return FixedBoxWhereInvalid


def synthetic_pages(count: int, dpi: int):
    """`count` distinct rendered pages from synthetic receipts and invoices."""
    from cropvlm.render import RenderConfig, render_document
    from cropvlm.synthetic import generate_document

    pages, seed = [], 0
    while len(pages) < count:
        kind = ("receipt", "invoice")[seed % 2]
        doc = generate_document(kind, seed, format="png", dpi=dpi)
        pages.extend(render_document(doc.data, RenderConfig(dpi=dpi)).pages)
        seed += 1
    return pages[:count]


def fields():
    from cropvlm.templates import FieldSpec

    return [
        FieldSpec("total", "What is the total amount paid?", "amount"),
        FieldSpec("date", "What is the date of the document?", "date"),
        FieldSpec("number", "What is the invoice or receipt number?", "id"),
        FieldSpec("vendor", "What is the name of the company that issued this document?"),
    ]


def build_checkpoints(folder: Path, tiny: bool) -> tuple[Path, Path]:
    import torch
    import tiny_models

    started = time.perf_counter()
    if tiny:
        paths = tiny_models.build_idefics3(folder / "policy", seed=0), tiny_models.build_idefics3(folder / "reader", seed=1)
    else:
        paths = (tiny_models.build_smolvlm_256m(folder / "policy", seed=0, dtype=torch.bfloat16),
                 tiny_models.build_smolvlm_256m(folder / "reader", seed=1, dtype=torch.bfloat16))
    print(f"built checkpoints in {time.perf_counter() - started:.1f} s: {', '.join(str(p) for p in paths)}", flush=True)
    return paths
