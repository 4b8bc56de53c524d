"""Held-out accuracy of crop policies with one reader: what promotion decisions rest on.

Each example is answered the way extraction answers it: the policy sees the full page,
its box is cut from the full-resolution page, the reader answers from page + crop (one
batched call per chunk of examples). Exact match (normalised by type) and ANLS per policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cropvlm.normalize import anls, exact_match
from cropvlm.pipeline import read_request
from cropvlm.policies.base import CropRequest, Policy
from cropvlm.training.examples import Example, ExampleSet


def evaluate_policies(policies: Mapping[str, Policy], examples: ExampleSet, reader, *, chunk: int = 32,
                      limit: int | None = None) -> dict[str, dict[str, float]]:
    """{name: {"exact", "anls", "n"}} over `examples` (the first `limit`)."""
    chosen = examples.examples[:limit] if limit else examples.examples
    totals = {name: [0.0, 0.0] for name in policies}
    for start in range(0, len(chosen), chunk):
        batch = _by_page(chosen[start : start + chunk])
        pages = [examples.pages.page(e.doc, e.page_number) for e in batch]
        for name, policy in policies.items():
            requests = [CropRequest(p, e.spec.question, e.spec.field, e.gold_box) for p, e in zip(pages, batch)]
            proposals = policy.propose(requests)
            reads = [read_request(p, prop, e.spec) for p, prop, e in zip(pages, proposals, batch)]
            for answer, example in zip(reader.answer(reads), batch):
                totals[name][0] += exact_match(answer.text, example.answer, example.spec.type)
                totals[name][1] += anls(answer.text, example.answer)
    n = max(1, len(chosen))
    return {name: {"exact": round(e / n, 4), "anls": round(a / n, 4), "n": len(chosen)}
            for name, (e, a) in totals.items()}


def _by_page(batch: Sequence[Example]) -> list[Example]:
    # requests of one page come together (readers share page work within a call)
    return sorted(batch, key=lambda e: (e.doc, e.page_number))
