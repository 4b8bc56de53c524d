"""Policy registry and training runs on SQLite and PostgreSQL: one promoted version at a
time, status changes, idempotent registration, resumable training runs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from storage import registry
from storage.db import make_engine, make_session_factory
from storage.errors import PolicyNotFoundError, PolicyStatusError
from storage.models import PolicyVersion


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


def _register(session, version: str, **kwargs) -> registry.PolicyVersionInfo:
    return registry.register_candidate(
        session, version=version, kind="heatmap", artifact_uri=f"s3://b/policies/{version}",
        config={"lr": 1e-4, "steps": [1, 2]}, **kwargs,
    )


def test_register_is_idempotent_and_links_parent_and_run(sessions):
    with sessions.begin() as session:
        run_id = registry.start_training_run(session, config={"lr": 1e-4}, config_hash="h1")
        v1 = _register(session, "heatmap@1")
        v2 = _register(session, "heatmap@2", parent_version="heatmap@1", metrics={"exact": 0.7},
                       reader="ocr:rapidocr@768", training_run_id=run_id)
        again = _register(session, "heatmap@2", metrics={"exact": 0.1})  # a retried task
    assert again == v2 and again.metrics == {"exact": 0.7}
    assert (v2.status, v2.parent_version, v2.training_run_id, v2.reader) == (
        "candidate", "heatmap@1", run_id, "ocr:rapidocr@768")
    assert (v1.metrics, v1.parent_version, v1.decided_at) == ({}, None, None)
    assert v2.config == {"lr": 1e-4, "steps": [1, 2]}
    with sessions.begin() as session:
        with pytest.raises(PolicyStatusError, match="already registered"):
            registry.register_candidate(session, version="heatmap@2", kind="heatmap",
                                        artifact_uri="s3://elsewhere", config={})
        with pytest.raises(PolicyNotFoundError, match="heatmap@0"):
            _register(session, "heatmap@3", parent_version="heatmap@0")
        assert [v.version for v in registry.list_versions(session)] == ["heatmap@2", "heatmap@1"]
        updated = registry.update_metrics(session, "heatmap@1", {"exact": 0.64, "reward": [0.1, 0.2]})
        assert registry.get_version(session, "heatmap@1").metrics == updated.metrics == {
            "exact": 0.64, "reward": [0.1, 0.2]}
        with pytest.raises(PolicyNotFoundError):
            registry.get_version(session, "nope")


def test_promote_retires_the_previous_and_only_one_is_promoted(sessions):
    with sessions.begin() as session:
        for version in ("heatmap@1", "heatmap@2", "heatmap@3"):
            _register(session, version)
        assert registry.promoted(session) is None
        first = registry.promote(session, "heatmap@1", note="first")
        assert (first.status, first.note) == ("promoted", "first") and first.decided_at is not None
    with sessions.begin() as session:
        assert registry.promote(session, "heatmap@2").status == "promoted"
        assert registry.promote(session, "heatmap@2").status == "promoted"  # again: a no-op
        statuses = {v.version: v.status for v in registry.list_versions(session)}
        assert statuses == {"heatmap@1": "retired", "heatmap@2": "promoted", "heatmap@3": "candidate"}
        assert registry.promoted(session).version == "heatmap@2"
        # a rollback: a retired version may be promoted again
        assert registry.promote(session, "heatmap@1").status == "promoted"
        assert registry.get_version(session, "heatmap@2").status == "retired"
        count = session.scalar(sa.select(sa.func.count()).where(PolicyVersion.status == "promoted"))
        assert count == 1


def test_the_database_refuses_a_second_promoted_version(sessions):
    with sessions.begin() as session:
        _register(session, "heatmap@1")
        _register(session, "heatmap@2")
        registry.promote(session, "heatmap@1")
    with pytest.raises(sa.exc.IntegrityError), sessions.begin() as session:
        session.execute(sa.update(PolicyVersion).where(PolicyVersion.version == "heatmap@2")
                        .values(status="promoted"))


def test_each_role_has_its_own_promoted_version(sessions):
    with sessions.begin() as session:
        _register(session, "heatmap@1")
        for version in ("head#1", "head#2"):
            registry.register_candidate(session, version=version, kind="lightgbm", role="answer_head",
                                        artifact_uri=f"s3://b/heads/{version}", config={})
        registry.promote(session, "heatmap@1")
        registry.promote(session, "head#1")
        registry.promote(session, "head#2")  # retires head#1, not the policy
        assert registry.promoted(session).version == "heatmap@1"
        assert registry.promoted(session, role="answer_head").version == "head#2"
        assert registry.get_version(session, "head#1").status == "retired"
        with pytest.raises(ValueError, match="role"):
            registry.register_candidate(session, version="x", kind="k", role="reader", artifact_uri="u", config={})
        with pytest.raises(PolicyStatusError, match="already registered"):  # same version, other role
            registry.register_candidate(session, version="heatmap@1", kind="heatmap", role="answer_head",
                                        artifact_uri="s3://b/policies/heatmap@1", config={"lr": 1e-4, "steps": [1, 2]})
    with pytest.raises(sa.exc.IntegrityError), sessions.begin() as session:
        session.execute(sa.update(PolicyVersion).where(PolicyVersion.version == "head#1").values(status="promoted"))


def test_reject_and_refused_status_changes(sessions):
    with sessions.begin() as session:
        _register(session, "heatmap@1")
        _register(session, "heatmap@2")
        registry.promote(session, "heatmap@1")
        rejected = registry.reject(session, "heatmap@2", note="worse on dates")
        assert (rejected.status, rejected.note) == ("rejected", "worse on dates")
        with pytest.raises(PolicyStatusError, match="rejected"):
            registry.promote(session, "heatmap@2")
        with pytest.raises(PolicyStatusError, match="promote another"):
            registry.reject(session, "heatmap@1", note="no")
        with pytest.raises(PolicyNotFoundError):
            registry.promote(session, "heatmap@9")
        assert registry.promoted(session).version == "heatmap@1"


def test_training_runs_checkpoint_and_resume(sessions):
    with sessions.begin() as session:
        assert registry.resumable_training_run(session, "h1") is None
        run_id = registry.start_training_run(session, config={"lr": 1}, config_hash="h1", flow_run_id="f1")
        assert registry.resumable_training_run(session, "h1") is None  # no checkpoint yet
        registry.checkpoint_training_run(session, run_id, step=100, checkpoint_uri="s3://b/ckpt/100",
                                         metrics={"reward": [0.1, 0.3]})
        registry.finish_training_run(session, run_id, status="failed", error="CUDA out of memory")
        run = registry.resumable_training_run(session, "h1")
        assert (run.id, run.status, run.step, run.checkpoint_uri, run.error, run.flow_run_id) == (
            run_id, "failed", 100, "s3://b/ckpt/100", "CUDA out of memory", "f1")
        assert run.metrics == {"reward": [0.1, 0.3]} and run.finished_at is not None
        assert registry.resumable_training_run(session, "other") is None
    with sessions.begin() as session:  # resumed: a new checkpoint makes it running again
        registry.checkpoint_training_run(session, run_id, step=200, checkpoint_uri="s3://b/ckpt/200",
                                         metrics={"reward": [0.1, 0.3, 0.5]})
        run = registry.get_training_run(session, run_id)
        assert (run.status, run.step, run.error, run.finished_at) == ("running", 200, None, None)
        registry.finish_training_run(session, run_id, status="completed", metrics={"reward": [0.5]})
        assert registry.get_training_run(session, run_id).metrics == {"reward": [0.5]}
        assert registry.resumable_training_run(session, "h1") is None  # it finished
        with pytest.raises(ValueError):
            registry.finish_training_run(session, run_id, status="running")
        with pytest.raises(PolicyNotFoundError):
            registry.checkpoint_training_run(session, 999_999, step=1, checkpoint_uri="x", metrics={})
