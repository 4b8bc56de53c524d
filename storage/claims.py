"""Document claims and run leases: one run at a time does the model work for a document, and
a run whose process died is found and marked `crashed`.

    holder = claim_document(session, key, run_id, lease_seconds)   # None: ours now
    renew_lease(session, run_id, lease_seconds)                    # the run's heartbeat
    release_claim(session, key, run_id)                            # answers written / failed
    sweep_stale_runs(session, by_run=run_id)                       # at the start of a run

Each takes a Session and never commits. Lease times come from the callers' clocks: workers
that share a database must agree on the time to well within a lease.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import DocumentClaim, ExtractionRun, utcnow
from storage.queries import _insert


@dataclass(frozen=True)
class ClaimKey:
    """What a claim is on: the key of `extractions`, with the document named by content."""

    sha256: str
    template_set_hash: str
    policy: str
    reader: str


def claim_document(session: Session, key: ClaimKey, run_id: int, lease_seconds: float) -> int | None:
    """Claim the document for `run_id`: None when the claim is ours (new, already ours, or
    taken over from an expired lease), else the id of the run that holds it.

    One statement (INSERT ... ON CONFLICT DO UPDATE ... WHERE), so two runs claiming at once
    cannot both win, on SQLite and PostgreSQL alike.
    """
    for _ in range(3):  # the holder may release between our insert and our look-up
        now = utcnow()
        values = dict(run_id=run_id, claimed_at=now, lease_expires_at=now + timedelta(seconds=lease_seconds))
        stmt = _insert(session, DocumentClaim).values(**asdict(key), **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(asdict(key)),
            set_=values,
            where=(DocumentClaim.lease_expires_at < now) | (DocumentClaim.run_id == run_id),
        )
        if session.execute(stmt.returning(DocumentClaim.run_id)).scalar() is not None:
            return None
        holder = session.scalar(sa.select(DocumentClaim.run_id).filter_by(**asdict(key)))
        if holder is not None:
            return holder
    raise RuntimeError(f"claim on document {key.sha256[:12]} changed hands three times in a row")


def release_claim(session: Session, key: ClaimKey, run_id: int) -> None:
    """Drop the run's claim on the document (a no-op if another run took it over)."""
    session.execute(sa.delete(DocumentClaim).filter_by(**asdict(key), run_id=run_id))


def release_run_claims(session: Session, run_id: int) -> int:
    """Drop every claim the run holds; returns how many there were."""
    return session.execute(sa.delete(DocumentClaim).where(DocumentClaim.run_id == run_id)).rowcount


def renew_lease(session: Session, run_id: int, lease_seconds: float) -> None:
    """The heartbeat: the run and its claims live `lease_seconds` more (a finished run is left)."""
    expires = utcnow() + timedelta(seconds=lease_seconds)
    session.execute(sa.update(ExtractionRun).where(ExtractionRun.id == run_id, ExtractionRun.status == "running")
                    .values(lease_expires_at=expires))
    session.execute(sa.update(DocumentClaim).where(DocumentClaim.run_id == run_id).values(lease_expires_at=expires))


def sweep_stale_runs(session: Session, *, by_run: int | None, lease_seconds: float) -> list[int]:
    """Mark `crashed` every `running` run whose lease expired, release its claims, and return
    their ids. A run from before leases existed is stale one lease after it started."""
    now = utcnow()
    expired = (ExtractionRun.lease_expires_at < now) | (
        ExtractionRun.lease_expires_at.is_(None) & (ExtractionRun.started_at < now - timedelta(seconds=lease_seconds)))
    stale = list(session.scalars(sa.select(ExtractionRun.id).where(ExtractionRun.status == "running", expired)))
    if not stale:
        return []
    found = f" (found by run {by_run})" if by_run is not None else ""
    session.execute(
        sa.update(ExtractionRun).where(ExtractionRun.id.in_(stale), ExtractionRun.status == "running").values(
            status="crashed", finished_at=now,
            error=f"crashed: the run stopped renewing its lease (process killed or lost); marked at "
                  f"{now.isoformat(timespec='seconds')}{found}",
        ),
        execution_options={"synchronize_session": False},
    )
    session.execute(sa.delete(DocumentClaim).where(DocumentClaim.run_id.in_(stale)))
    return stale
