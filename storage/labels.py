"""Gold labels: import parsed labels (`cropvlm.labels`) all or nothing, correct one label,
read the current ones, and split documents into train / heldout once.

    labels = parse_labels(path.read_text(), origin=str(path))   # LabelError lists all
    with Session.begin() as session:
        result = import_labels(session, labels, resolve_document=ids.get,
                               source="import:labels.jsonl", reviewer=None)
        set_label(session, document_id=7, field="total", answer="60.50", reviewer="alice")
        heldout = current_labels(session, split="heldout")

History is kept: a correction is a new `labels` row and the current label of (document,
page, field) is the latest by (created_at, id): the `current_labels` view (SQL in
migrations/versions/..._0002_labels_and_registry.py). Its columns: label_id, document_id,
document_uri, document_sha256, split (NULL until the document has one), page_number (NULL:
whichever page holds the value), field, question, answer, answer_type, box_x1..box_y2
(gold value box in percent of the page, NULL if none), source, reviewer, labelled_at.

Re-importing a file is idempotent, and does not undo reviews: a label is skipped when it
equals the current one, or equals the latest label this same source gave for that key
(a reviewer has corrected it since). A file whose answer changed is imported again.

The split is by document, from its sha256 (stable across machines and re-imports), recorded
the first time the document gets a label and never changed afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cropvlm.box import Box
from cropvlm.errors import LabelError
from cropvlm.labels import Label, describe_key
from cropvlm.templates import ANSWER_TYPES
from storage.models import SPLITS, Document, DocumentSplit, UTCDateTime
from storage.models import Label as LabelRow  # the table; `Label` is the core's label
from storage.queries import _insert

__all__ = [
    "DEFAULT_HELDOUT_PERCENT",
    "ImportResult",
    "CurrentLabel",
    "current_labels_view",
    "import_labels",
    "set_label",
    "current_labels",
    "current_label",
    "find_document",
    "assign_splits",
    "split_of",
]

DEFAULT_HELDOUT_PERCENT = 30
_CHUNK = 500  # ids per IN (...) list, well under SQLite's and Postgres's parameter limits

@dataclasses.dataclass(frozen=True)
class ImportResult:
    imported: int  # new label rows
    unchanged: int  # labels already current (or already corrected since: see kept_corrections)
    documents: int  # distinct documents (by content) in the input
    heldout: int = 0  # of those, in the heldout split
    kept_corrections: int = 0  # of `unchanged`: a later correction stays current

    @property
    def train(self) -> int:
        return self.documents - self.heldout


@dataclasses.dataclass(frozen=True)
class CurrentLabel:
    label_id: int
    document_id: int
    sha256: str
    uri: str
    page_number: int | None
    field: str
    question: str | None
    answer: str
    answer_type: str | None
    box: tuple[float, float, float, float] | None  # percent of the page
    split: str | None
    source: str
    reviewer: str | None
    labelled_at: datetime


# The current_labels view as a typed selectable, so results have Python types everywhere.
current_labels_view = sa.table(
    "current_labels",
    sa.column("label_id", sa.Integer),
    sa.column("document_id", sa.Integer),
    sa.column("document_uri", sa.Text),
    sa.column("document_sha256", sa.String),
    sa.column("split", sa.String),
    sa.column("page_number", sa.Integer),
    sa.column("field", sa.String),
    sa.column("question", sa.Text),
    sa.column("answer", sa.Text),
    sa.column("answer_type", sa.String),
    sa.column("box_x1", sa.Float),
    sa.column("box_y1", sa.Float),
    sa.column("box_x2", sa.Float),
    sa.column("box_y2", sa.Float),
    sa.column("source", sa.String),
    sa.column("reviewer", sa.String),
    sa.column("labelled_at", UTCDateTime()),
)


# --- writing ------------------------------------------------------------------------------


def import_labels(
    session: Session,
    labels: Sequence[Label],
    *,
    resolve_document: Callable[[str], int | None],
    source: str,
    reviewer: str | None = None,
    heldout_percent: int = DEFAULT_HELDOUT_PERCENT,
) -> ImportResult:
    """Insert the labels that differ from what is stored; assign splits to their documents.

    `resolve_document(doc)` gives the document id or None. Unknown documents and
    contradictory duplicates raise LabelError naming all of them, before anything is written.
    """
    if not labels:
        raise LabelError("no labels to import")
    problems = _contradictions(labels)
    docs = list(dict.fromkeys(label.doc for label in labels))
    ids = {doc: resolve_document(doc) for doc in docs}
    problems += [f"unknown document {doc!r}" for doc in docs if ids[doc] is None]
    if not problems:
        problems = _same_content_contradictions(labels, ids)
    if problems:
        raise LabelError(problems)

    splits = assign_splits(session, ids.values(), heldout_percent)
    history = _history(session, ids.values())
    rows, unchanged, kept, seen = [], 0, 0, set()
    for label in labels:
        document_id = ids[label.doc]
        key = (document_id, label.page, label.field)
        if key in seen:  # the same bytes under another name, with the same label
            unchanged += 1
            continue
        seen.add(key)
        past = history.get(key, [])
        wanted = (label.answer, label.question, label.type, _corners(label.box))
        if past and _content(past[-1]) == wanted:
            unchanged += 1
            continue
        own = [row for row in past if row.source == source]
        if own and _content(own[-1]) == wanted:  # this source said so before; a review overrode it
            unchanged += 1
            kept += 1
            continue
        rows.append(_row(document_id, label.page, label.field, label.answer, label.question,
                         label.type, label.box, source, reviewer))
    if rows:
        session.execute(sa.insert(LabelRow), rows)
    document_ids = set(ids.values())
    heldout = sum(1 for i in document_ids if splits[i] == "heldout")
    return ImportResult(len(rows), unchanged, len(document_ids), heldout, kept)


def set_label(
    session: Session,
    *,
    document_id: int,
    field: str,
    answer: str,
    page_number: int | None = None,
    reviewer: str | None,
    source: str = "review",
    question: str | None = None,
    answer_type: str | None = None,
    box: Box | None = None,
    heldout_percent: int = DEFAULT_HELDOUT_PERCENT,
) -> int:
    """Record `answer` as the current label of (document, page, field); return its label id.

    Question and answer type default to the field's latest label on the document; the gold
    box is not carried over (a wrong answer may have pointed at the wrong place). Setting
    what is already current, by the same reviewer and source, writes nothing.
    """
    problems = []
    if not field.strip():
        problems.append("field must be a non-empty string")
    if not answer.strip():
        problems.append("answer must be a non-empty string")
    if page_number is not None and page_number < 1:
        problems.append(f"page must be a positive integer (1-based), got {page_number}")
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        problems.append(f"type must be one of {', '.join(ANSWER_TYPES)}, got {answer_type!r}")
    if session.get(Document, document_id) is None:
        problems.append(f"document {document_id} does not exist")
    if problems:
        raise LabelError(problems)

    field = field.strip()
    past = _history(session, [document_id])
    same_field = sorted(
        (row for (_, _, f), rows in past.items() if f == field for row in rows),
        key=lambda row: (row.created_at, row.id),
    )
    if same_field:
        question = question if question is not None else same_field[-1].question
        answer_type = answer_type if answer_type is not None else same_field[-1].answer_type
    current = past.get((document_id, page_number, field), [None])[-1]
    if (
        current is not None
        and _content(current) == (answer, question, answer_type, _corners(box))
        and (current.source, current.reviewer) == (source, reviewer)
    ):
        return current.id
    assign_splits(session, [document_id], heldout_percent)
    row = _row(document_id, page_number, field, answer, question, answer_type, box, source, reviewer)
    return session.execute(sa.insert(LabelRow).values(row).returning(LabelRow.id)).scalar_one()


def _row(document_id, page, field, answer, question, answer_type, box: Box | None, source, reviewer) -> dict:
    x1, y1, x2, y2 = _corners(box) or (None,) * 4
    # No created_at: the database clock stamps it (see storage.models.Label).
    return dict(document_id=document_id, page_number=page, field=field, answer=answer,
                question=question, answer_type=answer_type, box_x1=x1, box_y1=y1, box_x2=x2,
                box_y2=y2, source=source, reviewer=reviewer)


def _corners(box: Box | None) -> tuple[float, float, float, float] | None:
    return None if box is None else box.as_tuple()


def _content(row) -> tuple:
    corners = (row.box_x1, row.box_y1, row.box_x2, row.box_y2)
    box = None if all(v is None for v in corners) else corners
    return row.answer, row.question, row.answer_type, box


def _contradictions(labels: Sequence[Label]) -> list[str]:
    seen: dict[tuple[str, int | None, str], Label] = {}
    problems = []
    for label in labels:
        earlier = seen.setdefault(label.key, label)
        if earlier != label:
            problems.append(f"{describe_key(label.key)} has two different labels "
                            f"({earlier.answer!r} and {label.answer!r})")
    return problems


def _same_content_contradictions(labels: Sequence[Label], ids: dict[str, int | None]) -> list[str]:
    """Two names of one document (same sha256) with different labels for one page and field."""
    seen: dict[tuple, Label] = {}
    problems = []
    for label in labels:
        earlier = seen.setdefault((ids[label.doc], label.page, label.field), label)
        if dataclasses.replace(earlier, doc=label.doc) != label:
            problems.append(f"{label.doc!r} and {earlier.doc!r} are the same document (same content) "
                            f"with different labels for field {label.field!r} "
                            f"({earlier.answer!r} and {label.answer!r})")
    return problems


def _history(session: Session, document_ids: Iterable[int]) -> dict[tuple, list]:
    """Every label row of these documents by (document_id, page_number, field), oldest first."""
    history: dict[tuple, list] = {}
    ids = sorted(set(document_ids))
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            sa.select(LabelRow.__table__)
            .where(LabelRow.document_id.in_(ids[start : start + _CHUNK]))
            .order_by(LabelRow.created_at, LabelRow.id)
        ).all()
        for row in rows:
            history.setdefault((row.document_id, row.page_number, row.field), []).append(row)
    return history


# --- splits -------------------------------------------------------------------------------


def split_of(sha256: str, heldout_percent: int = DEFAULT_HELDOUT_PERCENT) -> str:
    """'heldout' for about heldout_percent of documents, decided by the content hash alone."""
    return "heldout" if int(sha256[:8], 16) % 100 < heldout_percent else "train"


def assign_splits(
    session: Session, document_ids: Iterable[int], heldout_percent: int = DEFAULT_HELDOUT_PERCENT
) -> dict[int, str]:
    """The split of each document, assigning one to those that have none yet.

    A recorded split never changes, whatever heldout_percent a later call passes: a
    document that was held out once must never be trained on.
    """
    if not 0 <= heldout_percent <= 100:
        raise ValueError(f"heldout_percent must be between 0 and 100, got {heldout_percent}")
    ids = sorted(set(document_ids))
    splits: dict[int, str] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        hashes = dict(session.execute(
            sa.select(Document.id, Document.sha256).where(Document.id.in_(chunk))
        ).all())
        missing = [i for i in chunk if i not in hashes]
        if missing:
            raise LabelError([f"document {i} does not exist" for i in missing])
        rows = [{"document_id": i, "split": split_of(hashes[i], heldout_percent)} for i in chunk]
        # DO NOTHING: an existing (or concurrently inserted) split wins.
        session.execute(
            _insert(session, DocumentSplit).on_conflict_do_nothing(index_elements=["document_id"]),
            rows,
        )
        splits.update(session.execute(
            sa.select(DocumentSplit.document_id, DocumentSplit.split)
            .where(DocumentSplit.document_id.in_(chunk))
        ).all())
    return splits


# --- reading ------------------------------------------------------------------------------


def current_labels(
    session: Session, *, split: str | None = None, limit: int | None = None
) -> list[CurrentLabel]:
    """Rows of the current_labels view, by document uri, field and page."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    v = current_labels_view.c
    query = sa.select(current_labels_view).order_by(
        v.document_uri, v.field, v.page_number, v.label_id
    )
    if split is not None:
        query = query.where(v.split == split)
    if limit is not None:
        query = query.limit(limit)
    return [_current(row) for row in session.execute(query).mappings()]


def current_label(
    session: Session, document_id: int, field: str, page_number: int | None = None
) -> CurrentLabel | None:
    """The current label of (document, page, field), or None."""
    v = current_labels_view.c
    page = v.page_number.is_(None) if page_number is None else v.page_number == page_number
    row = session.execute(
        sa.select(current_labels_view).where(v.document_id == document_id, v.field == field, page)
    ).mappings().first()
    return None if row is None else _current(row)


def _current(row) -> CurrentLabel:
    corners = (row["box_x1"], row["box_y1"], row["box_x2"], row["box_y2"])
    return CurrentLabel(
        label_id=row["label_id"],
        document_id=row["document_id"],
        sha256=row["document_sha256"],
        uri=row["document_uri"],
        page_number=row["page_number"],
        field=row["field"],
        question=row["question"],
        answer=row["answer"],
        answer_type=row["answer_type"],
        box=None if any(v is None for v in corners) else corners,
        split=row["split"],
        source=row["source"],
        reviewer=row["reviewer"],
        labelled_at=row["labelled_at"],
    )


def find_document(session: Session, ref: str) -> int | None:
    """The document whose uri is `ref`, or whose sha256 is or starts with `ref` (>= 8 hex
    digits); None if there is none; LabelError if a prefix matches several."""
    # The same uri may have held other content before: the latest seen wins.
    document_id = session.scalar(
        sa.select(Document.id).where(Document.uri == ref)
        .order_by(Document.updated_at.desc(), Document.id.desc()).limit(1)
    )
    if document_id is not None:
        return document_id
    ref = ref.lower()
    if len(ref) < 8 or len(ref) > 64 or any(c not in "0123456789abcdef" for c in ref):
        return None
    matches = session.scalars(
        sa.select(Document.id).where(Document.sha256.startswith(ref, autoescape=True)).limit(2)
    ).all()
    if len(matches) > 1:
        raise LabelError(f"sha256 prefix {ref!r} matches several documents; give more digits")
    return matches[0] if matches else None
