"""Run every (reader, policy) configuration over the labelled documents, side by side.

Each document is rendered once and its pages are reused by every configuration: documents
go in batches, and every configuration answers the batch before the next batch is rendered
(memory stays bounded; the order of configurations inside a batch does not change what
each one sees). Within a configuration, a batch is one `crop_then_answer` call per set of
labelled fields (receipts and invoices ask different questions). Each reader and policy is
built once and warmed up on one page before its first timed call (model loading is not
part of seconds per answer).

A (reader, policy) that raises on a batch is retried document by document; a document it
still fails on counts as wrong answers for its labels, and is listed in the report.

Which page answers a label: the label's `page` when it has one, else the document's best
page (`pipeline.mark_best`: the most confident answer).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cropvlm.box import Box
from cropvlm.errors import CropVLMError, LabelError
from cropvlm.evaluation.metrics import Scored, failed, pixels_seen, score
from cropvlm.labels import Label, LabelSet
from cropvlm.pipeline import FieldResult, PageRef, crop_then_answer
from cropvlm.policies.base import Policy
from cropvlm.readers.base import Reader
from cropvlm.render import RenderConfig, render_document
from cropvlm.specs import build_policy, build_reader, split_spec

BASELINE_POLICIES = ("full", "center", "random", "oracle")
DEFAULT_POLICIES = ("full", "center", "random", "oracle")  # + the promoted (learned) policy, when there is one


@dataclass(frozen=True)
class Config:
    reader: str  # reader spec, e.g. "ocr:rapidocr@768"
    policy: str  # policy spec, e.g. "center" or a learned policy's spec

    @property
    def is_learned(self) -> bool:
        return split_spec(self.policy)[0] not in BASELINE_POLICIES


@dataclass
class ConfigStats:
    reader: str  # version, as in the result rows
    policy: str
    pages: int = 0
    answers: int = 0  # (page, field) pairs answered, labelled or not
    policy_seconds: float = 0.0
    reader_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return self.policy_seconds + self.reader_seconds

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds > 0 else 0.0


@dataclass
class RunResult:
    scored: list[Scored] = field(default_factory=list)
    stats: list[ConfigStats] = field(default_factory=list)  # one per configuration, in order
    documents: int = 0
    pages: int = 0
    render_seconds: float = 0.0
    wall_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # "reader / policy: doc: error", one per failed document


def full_resolution_spec(spec: str, reader: Reader) -> str | None:
    """The same reader without a pixel budget (`...@full`), or None if it has none already.

    Readers expose `.budget` (long side in pixels; None = full resolution). The spec's
    `@BUDGET` becomes `@full`; a spec without `@` (default budget) gets `@full`; options
    after `+` (an answer head) are kept.
    An `hf:` reader has no `@full` (past the checkpoint's own settings a model sees inputs
    it was not trained on): its full resolution is `@default`, the checkpoint's processor
    settings, when the spec's resolution is below them (`HfReader.below_default`).
    """
    if spec.strip().startswith("hf:"):
        return _hf_default_spec(spec) if getattr(reader, "below_default", False) else None
    budget = getattr(reader, "budget", None)
    if budget is None:
        return None
    spec, plus, options = spec.partition("+")  # `+head=...` stays with the reader
    if spec.endswith(f"@{budget}"):
        return spec[: -len(str(budget))] + "full" + plus + options
    kind, colon, rest = spec.partition(":")
    if colon and "@" not in rest and "?" not in rest:
        return f"{spec}@full{plus}{options}"
    return None


def _hf_default_spec(spec: str) -> str:
    """`hf:MODEL@512?batch_size=8` -> `hf:MODEL@default?batch_size=8`."""
    body, question, query = spec.strip().partition("?")
    model, _, _ = body.rpartition("@")
    return f"{model}@default{question}{query}"


def plan_configs(readers: Sequence[str], policies: Sequence[str], has_boxes: bool,
                 full_resolution: bool = True,
                 resolve_reader: Callable[[str], Reader] = build_reader) -> tuple[list[Config], list[str]]:
    """Every reader with every policy, then each budgeted reader at full resolution with no
    crop. `oracle` needs gold boxes: without them it is left out, with a note."""
    if not readers:
        raise CropVLMError("no readers to evaluate")
    if not policies:
        raise CropVLMError("no policies to evaluate")
    configs: list[Config] = []
    notes: list[str] = []
    for reader in readers:
        for policy in policies:
            if split_spec(policy)[0] == "oracle" and not has_boxes:
                continue
            configs.append(Config(reader, policy))
        full = full_resolution_spec(reader, resolve_reader(reader)) if full_resolution else None
        if full is not None and full not in readers:
            configs.append(Config(full, "full"))
    if any(split_spec(p)[0] == "oracle" for p in policies) and not has_boxes:
        notes.append("oracle: absent (the labels have no gold boxes)")
    if not any(c.is_learned for c in configs):
        notes.append("learned: absent (no promoted crop policy yet; pass its spec to --policies when one ships)")
    configs = list(dict.fromkeys(configs))
    return configs, notes


def run_configs(
    label_set: LabelSet,
    configs: Sequence[Config],
    *,
    batch_documents: int = 8,
    render: RenderConfig = RenderConfig(),
    resolve_reader: Callable[[str], Reader] = build_reader,
    resolve_policy: Callable[[str], Policy] = build_policy,
    progress: Callable[[str], None] | None = print,
    documents_done: Callable[[int, int], None] | None = None,
) -> RunResult:
    """`documents_done(done, total)` after each batch of documents (a progress bar)."""
    if batch_documents < 1:
        raise ValueError("batch_documents must be >= 1")
    started = time.perf_counter()
    readers = {spec: resolve_reader(spec) for spec in dict.fromkeys(c.reader for c in configs)}
    policies = {spec: resolve_policy(spec) for spec in dict.fromkeys(c.policy for c in configs)}
    result = RunResult()
    result.stats = [ConfigStats(readers[c.reader].version, policies[c.policy].version) for c in configs]
    warmed: set[str] = set()
    documents = list(label_set.documents)
    labels_by_doc = {doc: label_set.labels_of(doc) for doc in documents}

    for first in range(0, len(documents), batch_documents):
        batch = documents[first : first + batch_documents]
        t0 = time.perf_counter()
        pages = {doc: _render(label_set, doc, render) for doc in batch}
        result.render_seconds += time.perf_counter() - t0
        result.documents += len(batch)
        result.pages += sum(len(p) for p in pages.values())
        groups = _group_by_fields(batch, labels_by_doc)
        refs = {doc: _page_refs(doc, pages[doc], labels_by_doc[doc]) for doc in batch}

        for config, stats in zip(configs, result.stats):
            reader, policy = readers[config.reader], policies[config.policy]
            if config.reader not in warmed or "policy:" + config.policy not in warmed:
                first_doc = batch[0]
                try:  # loads the model; a failure here shows again, per document, in the timed call
                    crop_then_answer(refs[first_doc][:1], [label_set.fields[labels_by_doc[first_doc][0].field]],
                                     policy, reader)
                except Exception:  # noqa: BLE001
                    pass
                warmed.update({config.reader, "policy:" + config.policy})
            budget, input_size = getattr(reader, "budget", None), getattr(reader, "input_size", None)
            for fields, docs in groups.items():
                specs = [label_set.fields[f] for f in fields]
                for part, out in _answer(docs, refs, specs, policy, reader):
                    if isinstance(out, Exception):
                        error = f"{type(out).__name__}: {out}"
                        result.errors.append(f"{stats.reader} / {stats.policy}: {part[0]}: {error}")
                        if progress is not None:
                            progress(f"evaluate: {stats.reader} / {stats.policy} failed on {part[0]}: {error}")
                        result.scored += [failed(stats.reader, stats.policy, part[0], label.field,
                                                 label_set.fields[label.field].type, label.answer, error)
                                          for label in labels_by_doc[part[0]]]
                        continue
                    stats.pages += sum(len(refs[doc]) for doc in part)
                    stats.answers += len(out.results)
                    stats.policy_seconds += out.policy_seconds
                    stats.reader_seconds += out.reader_seconds
                    by_key: dict[tuple[str, str], list[FieldResult]] = {}
                    for r in out.results:
                        by_key.setdefault((r.doc, r.spec.field), []).append(r)
                    for doc in part:
                        for label in labels_by_doc[doc]:
                            candidates = by_key[(doc, label.field)]
                            chosen = _chosen(candidates, label)
                            result.scored.append(score(
                                stats.reader, stats.policy, doc, label.field, label_set.fields[label.field].type,
                                label.answer, chosen.answer.text, chosen.page_number,
                                seconds=sum(r.seconds for r in candidates),
                                pixels=sum(pixels_seen(r.page_size, _crop_size(r), budget, input_size=input_size)
                                           for r in candidates),
                                crop=chosen.proposal.box if chosen.crop is not None else None,
                                confidence=chosen.answer.confidence,
                            ))
        if documents_done is not None:
            documents_done(result.documents, len(documents))
        if progress is not None:
            elapsed = time.perf_counter() - started
            progress(f"evaluate: {result.documents}/{len(documents)} documents, {result.pages} pages, "
                     f"{len(configs)} configurations, {elapsed:.0f} s")
    result.wall_seconds = time.perf_counter() - started
    return result


def _answer(docs: Sequence[str], refs: dict[str, list[PageRef]], specs, policy: Policy, reader: Reader):
    """(documents, BatchResult) for the whole group in one call; if that call raises, each
    document alone, and (document,), exception for those that fail by themselves."""
    try:
        return [(list(docs), crop_then_answer([r for doc in docs for r in refs[doc]], specs, policy, reader))]
    except Exception as exc:  # noqa: BLE001 - any model failure: isolate the document that causes it
        if len(docs) == 1:
            return [(list(docs), exc)]
    outcomes = []
    for doc in docs:
        try:
            outcomes.append(([doc], crop_then_answer(refs[doc], specs, policy, reader)))
        except Exception as exc:  # noqa: BLE001
            outcomes.append(([doc], exc))
    return outcomes


def _render(label_set: LabelSet, doc: str, render: RenderConfig):
    path = label_set.folder / doc
    try:
        pages = render_document(path.read_bytes(), render).pages
    except (CropVLMError, OSError) as exc:
        raise LabelError(f"{path}: cannot render: {exc}") from exc
    for label in label_set.labels_of(doc):
        if label.page is not None and label.page > len(pages):
            raise LabelError(f"{path}: label for field {label.field!r} is on page {label.page}, "
                             f"but the document has {len(pages)} page(s)")
    return pages


def _page_refs(doc: str, pages, labels: Sequence[Label]) -> list[PageRef]:
    refs = []
    for number, image in enumerate(pages, 1):
        gold: dict[str, Box] = {
            label.field: label.box for label in labels
            if label.box is not None and (label.page or 1) == number
        }
        refs.append(PageRef(doc, number, image, gold))
    return refs


def _group_by_fields(docs: Sequence[str], labels_by_doc: dict[str, list[Label]]) -> dict[tuple[str, ...], list[str]]:
    groups: dict[tuple[str, ...], list[str]] = {}
    for doc in docs:
        groups.setdefault(tuple(label.field for label in labels_by_doc[doc]), []).append(doc)
    return groups


def _chosen(candidates: Sequence[FieldResult], label: Label) -> FieldResult:
    if label.page is not None:
        for r in candidates:
            if r.page_number == label.page:
                return r
    return next((r for r in candidates if r.is_best), candidates[0])


def _crop_size(result: FieldResult) -> tuple[int, int] | None:
    if result.crop_pixels is None:
        return None
    left, top, right, bottom = result.crop_pixels
    return (right - left, bottom - top)
