"""Document claims and run leases: one run at a time does the model work for a document, and
a run whose process died is found and marked `crashed`.

    holders = claim_documents(session, keys, run_id, lease_seconds) # {key: run}: not ours; {} all ours
    holder = claim_document(session, key, run_id, lease_seconds)    # one key: None when ours
    done, holders = claim_unextracted(session, keys, run_id, lease_seconds)  # skips the extracted
    renew_lease(session, run_id, lease_seconds)                     # the run's heartbeat
    release_claim(session, key, run_id)                             # answers written / failed
    sweep_stale_runs(session, by_run=run_id)                        # at the start of a run

Each takes a Session and never commits. Lease times come from the callers' clocks: workers
that share a database must agree on the time to well within a lease.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, astuple, dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from storage.models import DocumentClaim, ExtractionRun, utcnow
from storage.queries import _insert, find_extractions


@dataclass(frozen=True)
class ClaimKey:
    """What a claim is on: the key of `extractions`, with the document named by content."""

    sha256: str
    template_set_hash: str
    policy: str
    reader: str


_KEY = (DocumentClaim.sha256, DocumentClaim.template_set_hash, DocumentClaim.policy, DocumentClaim.reader)  # ClaimKey's fields

CLAIM_CHUNK = 1000  # keys per statement: 7 parameters each, under SQLite's 32,766 and psycopg's 65,535


def claim_documents(session: Session, keys: Iterable[ClaimKey], run_id: int,
                    lease_seconds: float) -> dict[ClaimKey, int]:
    """Claim the documents for `run_id`; returns the holders of those that are not ours (empty:
    all ours, whether new, already ours, or taken over from an expired lease).

    One statement (INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING) per chunk of keys,
    so two runs claiming at once cannot both win a key, on SQLite and PostgreSQL alike.
    """
    # Each key once (twice in one INSERT ... ON CONFLICT fails on PostgreSQL), in one order for
    # every run, so runs claiming overlapping batches take row locks alike and never deadlock.
    unique = sorted(set(keys), key=astuple)
    holders: dict[ClaimKey, int] = {}
    for start in range(0, len(unique), CLAIM_CHUNK):
        holders |= _claim_chunk(session, unique[start:start + CLAIM_CHUNK], run_id, lease_seconds)
    return holders


def claim_document(session: Session, key: ClaimKey, run_id: int, lease_seconds: float) -> int | None:
    """Claim one document: None when it is ours, else the id of the run that holds it."""
    return claim_documents(session, [key], run_id, lease_seconds).get(key)


def claim_unextracted(session: Session, keys: Sequence[ClaimKey], run_id: int,
                      lease_seconds: float) -> tuple[set[ClaimKey], dict[ClaimKey, int]]:
    """Claim those of the documents not extracted yet with their setup; returns (the extracted,
    the holders of those claimed by another run). The others are ours."""
    done = _extracted(session, keys)  # the common case on a scheduled rerun: one read, no write
    holders = claim_documents(session, [key for key in keys if key not in done], run_id, lease_seconds)
    # Looked up again once the claims are ours: a run that finished a document (and released
    # its claim) between the first look and the claim has committed by now.
    late = _extracted(session, [key for key in keys if key not in done and key not in holders])
    for key in late:
        release_claim(session, key, run_id)
    return done | late, holders


def _extracted(session: Session, keys: Sequence[ClaimKey]) -> set[ClaimKey]:
    by_setup: dict[tuple[str, str, str], list[ClaimKey]] = {}
    for key in keys:
        by_setup.setdefault((key.template_set_hash, key.policy, key.reader), []).append(key)
    done: set[ClaimKey] = set()
    for setup, group in by_setup.items():
        found = find_extractions(session, [key.sha256 for key in group], *setup)
        done.update(key for key in group if key.sha256 in found)
    return done


def _claim_chunk(session: Session, keys: list[ClaimKey], run_id: int, lease_seconds: float) -> dict[ClaimKey, int]:
    holders: dict[ClaimKey, int] = {}
    for _ in range(3):  # a holder may release between our insert and our look-up: claim those again
        now = utcnow()
        values = dict(run_id=run_id, claimed_at=now, lease_expires_at=now + timedelta(seconds=lease_seconds))
        stmt = _insert(session, DocumentClaim.__table__)
        stmt = stmt.on_conflict_do_update(
            index_elements=[column.key for column in _KEY],
            set_={name: stmt.excluded[name] for name in values},
            where=(DocumentClaim.lease_expires_at < now) | (DocumentClaim.run_id == run_id),
        ).returning(*_KEY)
        # Core executemany: SQLAlchemy's "insertmanyvalues" sends the chunk as one multi-row
        # INSERT from a statement compiled once (a .values() list is compiled anew each time).
        rows = session.connection().execute(stmt, [{**asdict(key), **values} for key in keys])
        ours = {ClaimKey(*row) for row in rows}
        lost = [key for key in keys if key not in ours]
        if not lost:
            return holders
        holders |= _holders(session, lost)
        keys = [key for key in lost if key not in holders]
        if not keys:
            return holders
    raise RuntimeError(f"claims on {len(keys)} documents (e.g. {keys[0].sha256[:12]}) changed hands three times in a row")


def _holders(session: Session, keys: list[ClaimKey]) -> dict[ClaimKey, int]:
    rows = session.execute(sa.select(*_KEY, DocumentClaim.run_id)
                           .where(sa.tuple_(*_KEY).in_([astuple(key) for key in keys])))
    return {ClaimKey(*row[:-1]): row[-1] for row in rows}


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
