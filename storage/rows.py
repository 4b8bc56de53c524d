"""AnswerRow: one answer as the flow hands it to storage (plain values, no ORM objects)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

_CROP = ("crop_x1", "crop_y1", "crop_x2", "crop_y2")
_CROP_PX = ("crop_px_x1", "crop_px_y1", "crop_px_x2", "crop_px_y2")


@dataclass(frozen=True)
class AnswerRow:
    page_number: int  # 1-based
    field: str
    question: str
    answer_type: str  # text | date | amount | id
    answer: str  # the reader's text
    value: str | None  # normalised for answer_type; None if it did not parse
    confidence: float  # 0-1
    is_best: bool  # the page chosen for this field; at most one per field per document
    page_width: int  # pixels of the rendered page
    page_height: int  # pixels of the rendered page
    policy_valid: bool  # False: the policy's box did not parse, the whole page was used
    # Crop in percent of page width/height (0-100); all None = the reader saw the whole page.
    crop_x1: float | None = None
    crop_y1: float | None = None
    crop_x2: float | None = None
    crop_y2: float | None = None
    # The same crop in pixels of the rendered page; all None with the percent box.
    crop_px_x1: int | None = None
    crop_px_y1: int | None = None
    crop_px_x2: int | None = None
    crop_px_y2: int | None = None
    crop_uri: str | None = None  # thumbnail in the object store
    policy_output: str | None = None  # raw policy text
    answer_source: str | None = None  # e.g. "crop", "page"
    latency_ms: float | None = None
    needs_review: bool = False  # empty, or below the field's review threshold

    def __post_init__(self) -> None:
        if self.page_number < 1:
            raise ValueError(
                f"field {self.field!r}: page_number is 1-based, got {self.page_number}"
            )
        for names in (_CROP, _CROP_PX):
            given = [getattr(self, n) is not None for n in names]
            if any(given) and not all(given):
                raise ValueError(
                    f"field {self.field!r} page {self.page_number}: set all of {names} or none"
                )

    def to_dict(self) -> dict:
        return asdict(self)
