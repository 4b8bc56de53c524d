"""Crop-then-answer over a batch of pages: the model work of an extraction, nothing else.

For every page x field: the policy proposes a box (one batched call for the whole batch),
the crop is cut from the full-resolution page, and the reader answers from page + crop (one
batched call). Pages may come from many documents; batching across documents is what keeps
a GPU busy. Then, per document and field, the most confident page's answer is marked best;
every candidate is kept.

Where both models run as `Job`s with prefetch (the Hugging Face backends, see
`cropvlm.jobs`) and the policy needs more than one call, the calls interleave: the policy
generates for wave k + 1 of `policy.batch_size` requests while the reader's inputs for wave k
are encoded (GPU order P1, P2, R1, P3, R2, ...), so the reader's first encode is hidden too.
Boxes, crops and answers are those of the plain order (tested).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from PIL import Image

from cropvlm.box import Box
from cropvlm.crops import cut_crop
from cropvlm.jobs import Job, run_jobs
from cropvlm.policies.base import CropRequest, Policy, Proposal
from cropvlm.readers.base import Answer, Reader, ReadRequest
from cropvlm.templates import FieldSpec

FULL_PAGE_AREA = 0.99  # a box covering this much of the page is read as "no crop"


@dataclass(frozen=True)
class PageRef:
    doc: str  # the caller's key for the document (e.g. its sha256)
    page_number: int  # 1-based
    image: Image.Image  # full-resolution RGB page
    gold_boxes: Mapping[str, Box] = field(default_factory=dict)  # field -> box (evaluation)


@dataclass(frozen=True)
class FieldResult:
    doc: str
    page_number: int
    spec: FieldSpec
    proposal: Proposal
    crop: Image.Image | None  # None: the reader saw the whole page
    crop_pixels: tuple[int, int, int, int] | None  # left, top, right, bottom on the page
    page_size: tuple[int, int]  # width, height in pixels
    answer: Answer
    seconds: float  # this answer's share of the batch's policy + reader time
    is_best: bool = False


@dataclass(frozen=True)
class BatchResult:
    results: list[FieldResult]
    policy_seconds: float
    reader_seconds: float


def crop_then_answer(
    pages: Sequence[PageRef], fields: Sequence[FieldSpec], policy: Policy, reader: Reader, *,
    interleave: bool = True,
) -> BatchResult:
    if not pages or not fields:
        return BatchResult([], 0.0, 0.0)
    pairs = [(page, spec) for page in pages for spec in fields]  # page-major: a page's fields together
    requests = [
        CropRequest(page.image, spec.question, spec.field, page.gold_boxes.get(spec.field))
        for page, spec in pairs
    ]
    if interleave and interleaves(policy, reader, len(requests)):
        proposals, reads, answers, seconds = _interleaved(pairs, requests, policy, reader)
        policy_seconds, reader_seconds = seconds.get("policy", 0.0), seconds.get("reader", 0.0)
    else:
        started = time.perf_counter()
        proposals = policy.propose(requests)
        policy_seconds = time.perf_counter() - started
        _check(f"policy {policy.version}", "boxes", proposals, requests)
        reads = [read_request(page.image, proposal, spec) for (page, spec), proposal in zip(pairs, proposals)]
        started = time.perf_counter()
        answers = reader.answer(reads)
        reader_seconds = time.perf_counter() - started
    _check(f"reader {reader.version}", "answers", answers, requests)

    share = (policy_seconds + reader_seconds) / len(pairs)
    results = [
        FieldResult(page.doc, page.page_number, spec, proposal, read.crop, read.crop_box, page.image.size, answer, share)
        for (page, spec), proposal, read, answer in zip(pairs, proposals, reads, answers)
    ]
    return BatchResult(mark_best(results), policy_seconds, reader_seconds)


def interleaves(policy, reader, requests: int) -> bool:
    """Whether `crop_then_answer` interleaves the two models' calls (see the module doc)."""
    return (callable(getattr(policy, "jobs", None)) and callable(getattr(reader, "jobs", None))
            and getattr(policy, "prefetch", False) and getattr(reader, "prefetch", False)
            and requests > getattr(policy, "batch_size", requests))


def _interleaved(pairs, requests, policy, reader):
    proposals: list[Proposal] = []
    answers: list[Answer] = []
    reads: list[ReadRequest] = []
    size = policy.batch_size
    waves = [range(start, min(start + size, len(requests))) for start in range(0, len(requests), size)]

    def reader_jobs(wave: range) -> Iterator[Job]:
        # taken by run_jobs after the wave's policy call has finished (it ran two calls before)
        _check(f"policy {policy.version}", "boxes", proposals[: wave.stop], requests[: wave.stop])
        wave_reads = [read_request(pairs[i][0].image, proposals[i], pairs[i][1]) for i in wave]
        reads.extend(wave_reads)
        yield from reader.jobs(wave_reads, answers)

    def schedule() -> Iterator[Job]:
        yield from policy.jobs(requests[waves[0].start : waves[0].stop], proposals)
        for k, wave in enumerate(waves):
            if k + 1 < len(waves):
                yield from policy.jobs(requests[waves[k + 1].start : waves[k + 1].stop], proposals)
            yield from reader_jobs(wave)

    seconds = run_jobs(schedule(), prefetch=True)
    return proposals, reads, answers, seconds


def _check(version: str, what: str, got: Sequence, requests: Sequence) -> None:
    if len(got) != len(requests):
        raise RuntimeError(f"{version} returned {len(got)} {what} for {len(requests)} requests")


def mark_best(results: Sequence[FieldResult]) -> list[FieldResult]:
    """Flag, per (document, field), the most confident answer; ties go to the earlier page."""
    best: dict[tuple[str, str], FieldResult] = {}
    for result in results:
        key = (result.doc, result.spec.field)
        current = best.get(key)
        if current is None or _rank(result) > _rank(current):
            best[key] = result
    chosen = {id(r) for r in best.values()}
    return [replace(r, is_best=id(r) in chosen) for r in results]


def _rank(result: FieldResult) -> tuple[bool, float, int]:
    # A non-empty answer beats an empty one; then confidence; then the earlier page.
    return (bool(result.answer.text), result.answer.confidence, -result.page_number)


def crop_for(
    page: Image.Image, proposal: Proposal
) -> tuple[Image.Image | None, tuple[int, int, int, int] | None]:
    """The crop a reader gets for `proposal` (None: no box, or one that covers the page)."""
    if proposal.box is None or proposal.box.area >= FULL_PAGE_AREA:
        return None, None
    return cut_crop(page, proposal.box)


def read_request(page: Image.Image, proposal: Proposal, spec: FieldSpec) -> ReadRequest:
    """What the reader gets for `proposal`: the page, its crop, and where the crop lies."""
    crop, pixels = crop_for(page, proposal)
    return ReadRequest(page, crop, spec, crop_box=pixels)
