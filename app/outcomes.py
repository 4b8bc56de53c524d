"""What extracting a batch reports: one outcome per document, and the batch's timings."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DocumentOutcome:
    uri: str
    status: str  # extracted | empty | skipped | failed
    error: str | None = None
    pages: int = 0
    answers: int = 0
    seconds: float = 0.0
    document_id: int | None = None  # None when the bytes could not be read


@dataclass
class BatchOutcome:
    documents: list[DocumentOutcome] = field(default_factory=list)
    pages: int = 0
    policy_seconds: float = 0.0
    reader_seconds: float = 0.0
    # (start, end) perf_counter stamps of each model call, so a flow running batches in
    # parallel threads can tell how long any model was busy (the union of the intervals).
    model_intervals: list[tuple[float, float]] = field(default_factory=list)
