"""Database tables as typed SQLAlchemy models. Change them only together with a migration.

Identity of a result: (document sha256, template set hash, policy, reader). The `extractions`
row for that key is the idempotence marker: a re-run finds it and skips the document; a
`document_claims` row on the same key marks a document a run is extracting now (claims.py).
All timestamps are timezone-aware UTC. Crop boxes are stored twice: in percent of the page
(the policy's own frame, 0-100) and in pixels of the rendered page image.

Labels (gold answers) keep their history: a correction is a new row, and the current label
of (document, page, field) is the latest. Documents are split into train / heldout once.
The policy registry records trained policy versions (at most one promoted) and the
training runs that produced them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_STATUSES = ("running", "completed", "completed_with_failures", "failed", "crashed", "interrupted")
RUN_DOCUMENT_STATUSES = ("extracted", "empty", "skipped", "failed")
SPLITS = ("train", "heldout")
POLICY_STATUSES = ("candidate", "promoted", "rejected", "retired")
TRAINING_STATUSES = ("running", "completed", "failed")
ROLES = ("policy", "answer_head")  # what a registered version is: promoted one per role


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on every backend (SQLite stores naive UTC text, Postgres timestamptz)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _status_check(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=name)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: sa.JSON(), Any: sa.JSON()}


def _created_at() -> Mapped[datetime]:
    return mapped_column(default=utcnow, server_default=sa.func.now())


class TemplateSetRow(Base):
    __tablename__ = "template_sets"

    hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # sha256 hex of `content`
    name: Mapped[str] = mapped_column(sa.String)
    content: Mapped[Any]  # the canonical template set (JSON)
    created_at: Mapped[datetime] = _created_at()


class Document(Base):
    """One row per distinct content (sha256); `uri` is the latest place it was seen."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    uri: Mapped[str] = mapped_column(sa.Text)
    media_type: Mapped[str] = mapped_column(sa.String)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    page_count: Mapped[int | None]
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=sa.func.now()
    )


class ExtractionRun(Base):
    __tablename__ = "extraction_runs"
    __table_args__ = (_status_check("status", RUN_STATUSES, "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    flow_run_id: Mapped[str | None] = mapped_column(sa.String)
    # A shard of a run that fanned out (flows/extract_shard.py): the run that listed it.
    parent_run_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("extraction_runs.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(sa.Text)  # the listed URI (s3://bucket/prefix or folder)
    template_set_hash: Mapped[str] = mapped_column(sa.ForeignKey("template_sets.hash"))
    policy: Mapped[str] = mapped_column(sa.String)
    reader: Mapped[str] = mapped_column(sa.String)
    parameters: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(sa.String)
    error: Mapped[str | None] = mapped_column(sa.Text)
    documents_total: Mapped[int] = mapped_column(default=0, server_default="0")
    documents_extracted: Mapped[int] = mapped_column(default=0, server_default="0")
    documents_skipped: Mapped[int] = mapped_column(default=0, server_default="0")
    documents_failed: Mapped[int] = mapped_column(default=0, server_default="0")
    pages_processed: Mapped[int] = mapped_column(default=0, server_default="0")
    answers_written: Mapped[int] = mapped_column(default=0, server_default="0")
    wall_seconds: Mapped[float | None]
    policy_seconds: Mapped[float | None]  # summed over pages, time in the policy
    reader_seconds: Mapped[float | None]  # summed over pages, time in the reader
    started_at: Mapped[datetime] = _created_at()
    finished_at: Mapped[datetime | None]
    # Renewed by the running process's heartbeat; in the past while `running`: the process died.
    lease_expires_at: Mapped[datetime | None]


class RunDocument(Base):
    """What happened to each listed object in a run; failures keep their error message."""

    __tablename__ = "run_documents"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "uri"),
        _status_check("status", RUN_DOCUMENT_STATUSES, "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("extraction_runs.id", ondelete="CASCADE"))
    uri: Mapped[str] = mapped_column(sa.Text)
    # NULL when the bytes could not be read, so the document is unknown.
    document_id: Mapped[int | None] = mapped_column(sa.ForeignKey("documents.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String)
    error: Mapped[str | None] = mapped_column(sa.Text)
    pages: Mapped[int | None]
    answers: Mapped[int | None]
    seconds: Mapped[float | None]  # wall time spent on this document
    created_at: Mapped[datetime] = _created_at()


class Extraction(Base):
    """Idempotence marker: this document was extracted with this template set, policy, reader."""

    __tablename__ = "extractions"
    __table_args__ = (sa.UniqueConstraint("document_id", "template_set_hash", "policy", "reader"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(sa.ForeignKey("documents.id"))
    template_set_hash: Mapped[str] = mapped_column(sa.ForeignKey("template_sets.hash"))
    policy: Mapped[str] = mapped_column(sa.String)
    reader: Mapped[str] = mapped_column(sa.String)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("extraction_runs.id"), index=True)
    created_at: Mapped[datetime] = _created_at()


class DocumentClaim(Base):
    """A document being extracted by one run: the key of `extractions`, by content (sha256).

    Taken before any model work, deleted when the answers are written or the document fails;
    a claim whose lease expired (its run stopped renewing it) can be taken over.
    """

    __tablename__ = "document_claims"

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    template_set_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    policy: Mapped[str] = mapped_column(sa.String, primary_key=True)
    reader: Mapped[str] = mapped_column(sa.String, primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("extraction_runs.id", ondelete="CASCADE"), index=True)
    claimed_at: Mapped[datetime]
    lease_expires_at: Mapped[datetime]


class Answer(Base):
    """One field answered on one page, with the crop that produced it."""

    __tablename__ = "answers"
    __table_args__ = (
        sa.UniqueConstraint("extraction_id", "page_number", "field"),
        # At most one best page per field: document_fields has one row per field.
        sa.Index(
            "uq_answers_best_page",
            "extraction_id",
            "field",
            unique=True,
            postgresql_where=sa.text("is_best"),
            sqlite_where=sa.text("is_best"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    extraction_id: Mapped[int] = mapped_column(sa.ForeignKey("extractions.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(sa.ForeignKey("documents.id"), index=True)
    page_number: Mapped[int]  # 1-based
    field: Mapped[str] = mapped_column(sa.String)
    question: Mapped[str] = mapped_column(sa.Text)
    answer_type: Mapped[str] = mapped_column(sa.String)
    answer: Mapped[str] = mapped_column(sa.Text)  # the reader's text
    value: Mapped[str | None] = mapped_column(
        sa.Text
    )  # normalised by answer type; NULL if unparseable
    confidence: Mapped[float]
    # Below the field's review threshold (template or settings) when written, or empty.
    needs_review: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    is_best: Mapped[bool]  # the page chosen for this field in a multi-page document
    # Crop in percent of page width/height (0-100); all NULL = the reader saw the whole page.
    crop_x1: Mapped[float | None]
    crop_y1: Mapped[float | None]
    crop_x2: Mapped[float | None]
    crop_y2: Mapped[float | None]
    # The same crop in pixels of the rendered page image.
    crop_px_x1: Mapped[int | None]
    crop_px_y1: Mapped[int | None]
    crop_px_x2: Mapped[int | None]
    crop_px_y2: Mapped[int | None]
    page_width: Mapped[int]  # pixels of the rendered page
    page_height: Mapped[int]  # pixels of the rendered page
    crop_uri: Mapped[str | None] = mapped_column(sa.Text)  # thumbnail in the object store
    policy: Mapped[str] = mapped_column(sa.String)
    reader: Mapped[str] = mapped_column(sa.String)
    policy_output: Mapped[str | None] = mapped_column(
        sa.Text
    )  # raw policy text, e.g. "[10, 20, 40, 30]."
    policy_valid: Mapped[bool]  # False: the box did not parse, the full page was used
    answer_source: Mapped[str | None] = mapped_column(sa.String)  # e.g. "crop", "page", "ocr"
    latency_ms: Mapped[float | None]  # policy + reader time for this answer
    created_at: Mapped[datetime] = _created_at()


class Label(Base):
    """One gold answer for a document's field; never updated: a correction is a new row.

    The current label of (document_id, page_number, field) is the latest by (created_at,
    id): see the current_labels view. created_at comes from the database clock only (no
    Python default) so rows written by code and by a plain SQL INSERT order consistently;
    ties (SQLite's second resolution, one Postgres transaction) fall back to id.
    """

    __tablename__ = "labels"
    __table_args__ = (
        sa.Index("ix_labels_document_id_field", "document_id", "field"),
        sa.CheckConstraint("page_number IS NULL OR page_number >= 1", name="page_number"),
        # A gold value box is all four coordinates, in percent, with positive size, or none.
        sa.CheckConstraint(
            "(box_x1 IS NULL AND box_y1 IS NULL AND box_x2 IS NULL AND box_y2 IS NULL) OR "
            "(box_x1 >= 0 AND box_y1 >= 0 AND box_x2 <= 100 AND box_y2 <= 100 "
            "AND box_x1 < box_x2 AND box_y1 < box_y2)",
            name="box",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(sa.ForeignKey("documents.id"))
    page_number: Mapped[int | None]  # 1-based; NULL = whichever page holds the value
    field: Mapped[str] = mapped_column(sa.String)
    question: Mapped[str | None] = mapped_column(sa.Text)
    answer: Mapped[str] = mapped_column(sa.Text)  # gold answer as printed
    answer_type: Mapped[str | None] = mapped_column(sa.String)  # text | date | amount | id
    # Gold value box in percent of the page (0-100), for the oracle policy and SFT targets.
    box_x1: Mapped[float | None]
    box_y1: Mapped[float | None]
    box_x2: Mapped[float | None]
    box_y2: Mapped[float | None]
    source: Mapped[str] = mapped_column(sa.String)  # "import:labels.jsonl", "review", "synthetic"
    reviewer: Mapped[str | None] = mapped_column(sa.String)
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())


class DocumentSplit(Base):
    """Train or heldout, per document, decided once from its sha256 and never changed."""

    __tablename__ = "document_splits"
    __table_args__ = (_status_check("split", SPLITS, "split"),)

    document_id: Mapped[int] = mapped_column(sa.ForeignKey("documents.id"), primary_key=True)
    split: Mapped[str] = mapped_column(sa.String)
    assigned_at: Mapped[datetime] = _created_at()


class TrainingRun(Base):
    """One policy training run; checkpoints make a failed or interrupted run resumable."""

    __tablename__ = "training_runs"
    __table_args__ = (_status_check("status", TRAINING_STATUSES, "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    flow_run_id: Mapped[str | None] = mapped_column(sa.String)
    status: Mapped[str] = mapped_column(sa.String)
    config: Mapped[Any]
    config_hash: Mapped[str] = mapped_column(sa.String(64), index=True)  # finds a run to resume
    started_at: Mapped[datetime] = _created_at()
    finished_at: Mapped[datetime | None]
    step: Mapped[int] = mapped_column(default=0, server_default="0")  # last checkpointed step
    checkpoint_uri: Mapped[str | None] = mapped_column(sa.Text)
    metrics: Mapped[Any]  # e.g. {"reward": [...], "heldout_exact": 0.71}
    error: Mapped[str | None] = mapped_column(sa.Text)


class PolicyVersion(Base):
    """A trained model version: a crop policy or an OCR answer head (`role`). At most one per
    role is 'promoted': the one extraction uses."""

    __tablename__ = "policy_versions"
    __table_args__ = (
        _status_check("status", POLICY_STATUSES, "status"),
        sa.Index(
            "uq_policy_versions_promoted",
            "role",
            unique=True,
            postgresql_where=sa.text("status = 'promoted'"),
            sqlite_where=sa.text("status = 'promoted'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(sa.String, unique=True)  # e.g. "heatmap@1a2b3c4d"
    kind: Mapped[str] = mapped_column(sa.String)  # e.g. "heatmap", "hf-lora", "lightgbm"
    role: Mapped[str] = mapped_column(sa.String, default="policy", server_default="policy")  # ROLES
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("policy_versions.id"))
    status: Mapped[str] = mapped_column(sa.String)
    artifact_uri: Mapped[str] = mapped_column(sa.Text)
    config: Mapped[Any]
    metrics: Mapped[Any]
    reader: Mapped[str | None] = mapped_column(sa.String)  # the judge reader's version
    training_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("training_runs.id"))
    created_at: Mapped[datetime] = _created_at()
    decided_at: Mapped[datetime | None]  # when it was promoted, rejected or retired
    note: Mapped[str | None] = mapped_column(sa.Text)
