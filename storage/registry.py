"""Model registry and training runs: which trained versions exist (crop policies and OCR answer
heads, told apart by `role`), which one of each role is promoted, and where a training run
can resume from.

    with Session.begin() as session:
        run_id = start_training_run(session, config=cfg, config_hash=h, flow_run_id=...)
        checkpoint_training_run(session, run_id, step=200, checkpoint_uri=uri, metrics=m)
        finish_training_run(session, run_id, status="completed", metrics=m)
        register_candidate(session, version="heatmap@1a2b3c4d", kind="heatmap",
                           artifact_uri=uri, config=cfg, parent_version=old, training_run_id=run_id)
        promote(session, "heatmap@1a2b3c4d", note="heldout exact 0.71 > 0.64")

Statuses: candidate -> promoted -> retired (when another is promoted), candidate -> rejected.
A retired version can be promoted again (a rollback); a rejected one cannot. At most one
version per role is promoted: promote() retires the previous one of its role in the same
transaction, and a partial unique index refuses a second promoted row from a concurrent one.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from storage.errors import PolicyNotFoundError, PolicyStatusError
from storage.models import ROLES, TRAINING_STATUSES, PolicyVersion, TrainingRun, utcnow
from storage.queries import _insert

__all__ = [
    "PolicyVersionInfo",
    "TrainingRunInfo",
    "register_candidate",
    "promote",
    "reject",
    "promoted",
    "get_version",
    "list_versions",
    "update_metrics",
    "start_training_run",
    "resumable_training_run",
    "checkpoint_training_run",
    "finish_training_run",
    "get_training_run",
]


@dataclasses.dataclass(frozen=True)
class PolicyVersionInfo:
    id: int
    version: str
    kind: str
    role: str
    parent_version: str | None
    status: str
    artifact_uri: str
    config: Any
    metrics: Any
    reader: str | None
    training_run_id: int | None
    created_at: datetime
    decided_at: datetime | None
    note: str | None


@dataclasses.dataclass(frozen=True)
class TrainingRunInfo:
    id: int
    flow_run_id: str | None
    status: str
    config: Any
    config_hash: str
    started_at: datetime
    finished_at: datetime | None
    step: int
    checkpoint_uri: str | None
    metrics: Any
    error: str | None


# --- policy versions ----------------------------------------------------------------------


def register_candidate(
    session: Session,
    *,
    version: str,
    kind: str,
    artifact_uri: str,
    config: Any,
    metrics: Any = None,
    parent_version: str | None = None,
    reader: str | None = None,
    training_run_id: int | None = None,
    role: str = "policy",
) -> PolicyVersionInfo:
    """Record a new candidate version; the existing row if this version is already there.

    Registering the same version again (a retried task) returns it unchanged; the same
    version name with another kind, artifact or config is a PolicyStatusError.
    """
    if not version.strip():
        raise ValueError("version must be a non-empty string")
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    parent_id = None
    if parent_version is not None:
        parent_id = _row(session, parent_version).id
    stmt = _insert(session, PolicyVersion).values(
        version=version, kind=kind, role=role, parent_id=parent_id, status="candidate",
        artifact_uri=artifact_uri, config=config, metrics=metrics if metrics is not None else {},
        reader=reader, training_run_id=training_run_id, created_at=utcnow(),
    )
    # DO NOTHING, not a read-then-insert: a concurrent registration must not abort the caller.
    session.execute(stmt.on_conflict_do_nothing(index_elements=["version"]))
    info = get_version(session, version)
    if (info.kind, info.role, info.artifact_uri, _canonical(info.config)) != (kind, role, artifact_uri,
                                                                           _canonical(config)):
        raise PolicyStatusError(
            f"policy version {version!r} is already registered with another kind, artifact "
            f"or config ({info.kind}, {info.artifact_uri}); give the new one another version"
        )
    return info


def promote(session: Session, version: str, *, note: str | None = None) -> PolicyVersionInfo:
    """Make `version` the promoted one of its role; the previously promoted one becomes 'retired'."""
    row = _row(session, version, lock=True)
    if row.status == "promoted":
        return get_version(session, version)
    if row.status == "rejected":
        raise PolicyStatusError(f"policy version {version!r} was rejected; it cannot be promoted")
    now = utcnow()
    # Retire first: the partial unique index allows one promoted row at any moment.
    session.execute(
        sa.update(PolicyVersion)
        .where(PolicyVersion.status == "promoted", PolicyVersion.role == row.role)
        .values(status="retired", decided_at=now),
        execution_options={"synchronize_session": False},
    )
    _set_status(session, row.id, "promoted", now, note)
    return get_version(session, version)


def reject(session: Session, version: str, *, note: str) -> PolicyVersionInfo:
    """Mark a candidate (or a retired version) as rejected, with the reason in `note`."""
    row = _row(session, version, lock=True)
    if row.status == "promoted":
        raise PolicyStatusError(
            f"policy version {version!r} is promoted; promote another version before rejecting it"
        )
    if row.status != "rejected":
        _set_status(session, row.id, "rejected", utcnow(), note)
    return get_version(session, version)


def promoted(session: Session, role: str = "policy") -> PolicyVersionInfo | None:
    """The promoted version of `role`, or None while there is none."""
    rows = _select_versions(session, (PolicyVersion.status == "promoted") & (PolicyVersion.role == role))
    return rows[0] if rows else None


def get_version(session: Session, version: str) -> PolicyVersionInfo:
    rows = _select_versions(session, PolicyVersion.version == version)
    if not rows:
        raise PolicyNotFoundError(f"policy version {version!r} is not in the registry")
    return rows[0]


def list_versions(session: Session) -> list[PolicyVersionInfo]:
    """Every version, newest first."""
    return _select_versions(session, sa.true())


def update_metrics(session: Session, version: str, metrics: Any) -> PolicyVersionInfo:
    """Replace the version's metrics (e.g. after evaluating it on the heldout labels)."""
    row = _row(session, version)
    session.execute(
        sa.update(PolicyVersion).where(PolicyVersion.id == row.id).values(metrics=metrics),
        execution_options={"synchronize_session": False},
    )
    return get_version(session, version)


def _set_status(session: Session, version_id: int, status: str, now: datetime, note: str | None) -> None:
    values: dict[str, Any] = {"status": status, "decided_at": now}
    if note is not None:
        values["note"] = note
    session.execute(
        sa.update(PolicyVersion).where(PolicyVersion.id == version_id).values(**values),
        execution_options={"synchronize_session": False},
    )


def _row(session: Session, version: str, *, lock: bool = False):
    query = sa.select(PolicyVersion.id, PolicyVersion.status, PolicyVersion.role).where(PolicyVersion.version == version)
    if lock:  # Postgres: concurrent promote/reject of one version wait for each other
        query = query.with_for_update()
    row = session.execute(query).first()
    if row is None:
        raise PolicyNotFoundError(f"policy version {version!r} is not in the registry")
    return row


def _select_versions(session: Session, where) -> list[PolicyVersionInfo]:
    parent = aliased(PolicyVersion)
    rows = session.execute(
        sa.select(PolicyVersion.__table__, parent.version.label("parent_version"))
        .outerjoin(parent, parent.id == PolicyVersion.parent_id)
        .where(where)
        .order_by(PolicyVersion.created_at.desc(), PolicyVersion.id.desc())
    ).mappings()
    return [
        PolicyVersionInfo(**{f.name: row[f.name] for f in dataclasses.fields(PolicyVersionInfo)})
        for row in rows
    ]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


# --- training runs ------------------------------------------------------------------------


def start_training_run(
    session: Session, *, config: Any, config_hash: str, flow_run_id: str | None = None
) -> int:
    """Insert a run with status 'running'; return its id."""
    run = TrainingRun(
        flow_run_id=flow_run_id, status="running", config=config, config_hash=config_hash,
        started_at=utcnow(), step=0, metrics={},
    )
    session.add(run)
    session.flush()
    return run.id


def resumable_training_run(session: Session, config_hash: str) -> TrainingRunInfo | None:
    """The latest 'running' or 'failed' run with this config hash and a checkpoint, or None.

    Runs older than the latest completed run with the same hash are not offered: that
    training already finished.
    """
    completed = (
        sa.select(sa.func.max(TrainingRun.id))
        .where(TrainingRun.config_hash == config_hash, TrainingRun.status == "completed")
        .scalar_subquery()
    )
    row = session.execute(
        sa.select(TrainingRun.__table__)
        .where(
            TrainingRun.config_hash == config_hash,
            TrainingRun.status.in_(("running", "failed")),
            TrainingRun.checkpoint_uri.is_not(None),
            TrainingRun.id > sa.func.coalesce(completed, 0),
        )
        .order_by(TrainingRun.started_at.desc(), TrainingRun.id.desc())
        .limit(1)
    ).mappings().first()
    return None if row is None else TrainingRunInfo(**row)


def checkpoint_training_run(
    session: Session, run_id: int, *, step: int, checkpoint_uri: str, metrics: Any
) -> None:
    """Record the latest checkpoint. A failed run that checkpoints again (it was resumed)
    is 'running' again, with its error cleared."""
    _update_run(session, run_id, step=step, checkpoint_uri=checkpoint_uri, metrics=metrics)
    session.execute(
        sa.update(TrainingRun)
        .where(TrainingRun.id == run_id, TrainingRun.status == "failed")
        .values(status="running", error=None, finished_at=None),
        execution_options={"synchronize_session": False},
    )


def finish_training_run(
    session: Session, run_id: int, *, status: str, error: str | None = None, metrics: Any = None
) -> None:
    """Set the final status ('completed' or 'failed'), error, finished_at and, if given, metrics."""
    if status not in TRAINING_STATUSES or status == "running":
        raise ValueError(f"final training status must be 'completed' or 'failed', got {status!r}")
    values: dict[str, Any] = {"status": status, "error": error, "finished_at": utcnow()}
    if metrics is not None:
        values["metrics"] = metrics
    _update_run(session, run_id, **values)


def get_training_run(session: Session, run_id: int) -> TrainingRunInfo:
    row = session.execute(
        sa.select(TrainingRun.__table__).where(TrainingRun.id == run_id)
    ).mappings().first()
    if row is None:
        raise PolicyNotFoundError(f"training run {run_id} does not exist")
    return TrainingRunInfo(**row)


def _update_run(session: Session, run_id: int, **values: Any) -> None:
    result = session.execute(
        sa.update(TrainingRun).where(TrainingRun.id == run_id).values(**values),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount == 0:
        raise PolicyNotFoundError(f"training run {run_id} does not exist")
