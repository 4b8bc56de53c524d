"""The retrain flow end to end on real parts: synthetic documents, the real OCR reader as
judge, SQLite and PostgreSQL registries, a local object store for artifacts.

A small network and low reader budget keep each run to seconds; what is tested is the
plumbing and the rules: a candidate is registered with its artifacts, promoted only when it
beats the incumbent by the margin, never touches the promoted policy when training fails,
and a rerun of the same settings resumes from the last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from cropvlm.errors import TrainingError
from cropvlm.specs import build_policy
from storage import registry
from app.resources import get_session_factory, resolve_policy

SMALL_MODEL = {"input_size": 128, "size_bins": 6, "min_side": 0.1, "width": 16, "embed": 16}
SHORT = {"sft_steps": 4, "checkpoint_every": 2, "grpo": {"steps": 1, "prompts_per_step": 3, "num_generations": 3}}
JUDGE = "ocr:rapidocr@256"


def run(db_url, tmp_path, **overrides):
    from flows.retrain import retrain

    settings = dict(judge=JUDGE, init="scratch", synthetic_documents=3, synthetic_heldout=1, use_labels=False,
                    model=SMALL_MODEL, train=SHORT, database_url=db_url, artifacts_uri=str(tmp_path / "artifacts"),
                    gpu_limit=None, workdir=str(tmp_path / "work"))
    settings.update(overrides)
    return retrain(**settings)


def promoted(db_url):
    with get_session_factory(db_url).begin() as session:
        return registry.promoted(session)


@pytest.mark.slow
def test_a_candidate_is_promoted_only_when_it_beats_the_incumbent(db_url, tmp_path):
    first = run(db_url, tmp_path, margin=-1.0, export_to=str(tmp_path / "export"))  # any candidate wins
    assert first["decision"] == "promoted"
    assert set(first["heldout"]) == {"candidate", "full"} and first["heldout"]["candidate"]["n"] == 4
    current = promoted(db_url)
    assert current.version == first["candidate"] and current.reader == JUDGE
    assert "held-out exact" in current.note and current.metrics["heldout"]["candidate"]["n"] == 4
    with get_session_factory(db_url).begin() as session:
        run_row = registry.get_training_run(session, current.training_run_id)
    assert run_row.status == "completed" and run_row.checkpoint_uri
    exported = tmp_path / "export"
    assert {"policy.onnx", "config.json", "weights.pt", "curves.png"} <= {p.name for p in exported.iterdir()}
    config = json.loads((exported / "config.json").read_text())
    assert config["trained"]["judge"] == JUDGE and config["trained"]["grpo_steps"] == 1
    # extraction's `promoted` spec is this version, fetched from the artifact store
    assert build_policy(resolve_policy("promoted", db_url)).version == first["candidate"]

    # a second candidate, from the promoted one, that cannot clear the margin
    second = run(db_url, tmp_path, init="promoted", margin=1.0, train={**SHORT, "seed": 1},
                 workdir=str(tmp_path / "work2"), size_shift=1)
    assert second["decision"] == "rejected" and set(second["heldout"]) == {"candidate", "promoted", "full"}
    assert promoted(db_url).version == first["candidate"]
    with get_session_factory(db_url).begin() as session:
        candidate = registry.get_version(session, second["candidate"])
    assert candidate.status == "rejected" and candidate.parent_version == first["candidate"]
    # served (and judged) with larger boxes: its config says so, its version tells it apart
    assert candidate.config["size_shift"] == 1 and second["candidate"].endswith("+size+1")
    assert "size_shift" not in config and "+size" not in first["candidate"]


@pytest.mark.slow
def test_a_failed_run_leaves_the_promoted_policy_and_resumes_from_its_checkpoint(tmp_path):
    from storage.db import upgrade_database
    from app.params import RetrainParams
    from app.retrain import train_candidate

    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_database(db_url)
    job = RetrainParams(database_url=db_url, artifacts_uri=str(tmp_path / "artifacts"), judge=JUDGE, init="scratch",
                        synthetic_documents=3, use_labels=False, model=SMALL_MODEL,
                        train={**SHORT, "grpo": {**SHORT["grpo"], "steps": 2}}, workdir=str(tmp_path / "work"))

    def die(state):
        if state.phase == "grpo" and state.step == 1:
            raise TrainingError("worker lost")

    with pytest.raises(TrainingError, match="worker lost"):
        train_candidate(job, on_step=die)
    with get_session_factory(db_url).begin() as session:
        assert registry.promoted(session) is None and registry.list_versions(session) == []
        failed = registry.resumable_training_run(session, _any_hash(session))
    assert failed.status == "failed" and "worker lost" in failed.error and failed.checkpoint_uri
    # a new worker with an empty scratch folder: the checkpoint comes back from the store
    fresh = job.model_copy(update={"workdir": str(tmp_path / "work-new")})
    result = train_candidate(fresh)
    assert result["resumed"] and result["run_id"] == failed.id
    curves = json.loads((tmp_path / "work-new" / "candidate" / "curves.json").read_text())
    assert [p["step"] for p in curves["sft"]] == [0, 1, 2, 3] and [p["step"] for p in curves["grpo"]] == [0, 1]


@pytest.mark.slow
def test_a_rerun_after_the_candidate_was_registered_registers_the_same_one(tmp_path):
    """The worker died after registering (say, while evaluating): the rerun's candidate is the
    same version with the same config, so registering it again is a no-op, not a conflict."""
    from storage.db import upgrade_database
    from app.params import RetrainParams
    from app.retrain import train_candidate

    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_database(db_url)
    job = RetrainParams(database_url=db_url, artifacts_uri=str(tmp_path / "artifacts"), judge=JUDGE, init="scratch",
                        synthetic_documents=3, use_labels=False, model=SMALL_MODEL, train=SHORT,
                        workdir=str(tmp_path / "work"))
    first = train_candidate(job)
    again = train_candidate(job)
    assert again["version"] == first["version"] and again["artifact_uri"] == first["artifact_uri"]
    with get_session_factory(db_url).begin() as session:
        (version,) = registry.list_versions(session)
    assert version.version == first["version"] and version.status == "candidate"
    trained = version.config["trained"]
    assert "train_seconds" not in trained and "seconds" not in json.dumps(trained["data"])
    assert "train_seconds" in version.metrics  # where the timing goes


def _any_hash(session):
    from sqlalchemy import select

    from storage.models import TrainingRun

    return session.scalars(select(TrainingRun.config_hash)).one()


def test_nothing_to_train_on_is_a_clear_error(tmp_path):
    from storage.db import upgrade_database

    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_database(db_url)
    with pytest.raises(TrainingError, match="no training labels"):
        run(db_url, tmp_path, synthetic_documents=0, use_labels=True)
    with pytest.raises(TrainingError, match="size_shift must be 0-4"):
        run(db_url, tmp_path, size_shift=9)
    assert promoted(db_url) is None


def _customer_labels(db_url, folder, count: int, seed: int = 11, heldout_percent: int = 0) -> int:
    """`count` documents as a customer would have them (extracted, then reviewed): files,
    `documents` rows, and labels imported from answers alone (no boxes). Returns labels."""
    import hashlib

    from cropvlm.labels import load_labels
    from cropvlm.synthetic.dataset import write_dataset
    from storage import queries
    from storage.labels import import_labels

    write_dataset(folder, count, seed=seed)
    label_set = load_labels(folder)
    with get_session_factory(db_url).begin() as session:
        ids = {}
        for name in dict.fromkeys(label.doc for label in label_set.labels):
            data = (folder / name).read_bytes()
            ids[name] = queries.upsert_document(session, sha256=hashlib.sha256(data).hexdigest(),
                                                uri=str(folder / name), media_type="application/octet-stream",
                                                size_bytes=len(data), page_count=1)
        labels = [dataclasses.replace(label, page=None, box=None) for label in label_set.labels]
        import_labels(session, labels, resolve_document=ids.get, source="review", heldout_percent=heldout_percent)
    return len(labels)


@pytest.mark.slow
def test_reviewed_answers_without_boxes_are_grounded_for_the_warm_start(db_url, tmp_path):
    labelled = _customer_labels(db_url, tmp_path / "customer", 2)
    # with grounding off, answers alone cannot warm-start a policy from scratch
    with pytest.raises(TrainingError, match="needs gold boxes"):
        run(db_url, tmp_path, synthetic_documents=0, use_labels=True, grounding=None, workdir=str(tmp_path / "w0"))

    result = run(db_url, tmp_path, synthetic_documents=0, use_labels=True, margin=-1.0, workdir=str(tmp_path / "w1"))
    with get_session_factory(db_url).begin() as session:
        metrics = registry.get_version(session, result["candidate"]).metrics
    grounding = metrics["grounding"]
    assert grounding["engine"] == "rapidocr" and metrics["train_examples"] == labelled
    assert grounding["grounded"] + grounding["ambiguous"] + grounding["not_found"] == labelled
    assert grounding["grounded"] >= labelled // 2, grounding
    curves = json.loads((tmp_path / "w1" / "candidate" / "curves.json").read_text())
    assert [p["step"] for p in curves["sft"]] == [0, 1, 2, 3]  # the warm start ran on grounded boxes


@pytest.mark.slow
def test_the_answer_head_learns_from_reviewed_answers_and_extraction_uses_it(db_url, tmp_path):
    from app.extract import resolve_models
    from app.params import ExtractParams

    judge = "ocr:rapidocr@512"
    head_only = dict(judge=judge, train_policy=False, synthetic_documents=0, use_labels=True,
                     workdir=str(tmp_path / "work"))
    _customer_labels(db_url, tmp_path / "few", 3)
    skipped = run(db_url, tmp_path, **head_only)["answer_head"]
    assert skipped["decision"] == "skipped" and "3 labelled training documents" in skipped["note"]

    _customer_labels(db_url, tmp_path / "train", 9, seed=21)
    _customer_labels(db_url, tmp_path / "heldout", 4, seed=31, heldout_percent=100)
    first = run(db_url, tmp_path, margin=-1.0, **head_only)["answer_head"]
    assert first["decision"] == "promoted", first
    assert set(first["heldout"]) == {"candidate", "rules"} and first["heldout"]["candidate"]["n"] == 16
    assert 0 <= first["heldout"]["candidate"]["ece"] <= 1
    with get_session_factory(db_url).begin() as session:
        head = registry.promoted(session, role="answer_head")
        assert registry.promoted(session) is None  # no crop policy was touched
    assert head.version == first["version"] and head.reader == judge and head.metrics["train_documents"] == 12
    assert head.config["zoom_boosters"] == {"text": "zoom-text.txt"}  # it rereads free text zoomed

    # extraction with the head's reader answers through the promoted head; other readers do not
    params = ExtractParams(source=str(tmp_path), reader=judge, database_url=db_url)
    assert resolve_models(params).reader_version == f"{judge}+{head.version}+words"
    shipped_named = params.model_copy(update={"reader": f"{judge}+head=default"})  # the promoted head wins
    assert resolve_models(shipped_named).reader_version == f"{judge}+{head.version}+words"
    for other in ("ocr:rapidocr@768", f"{judge}+head=none"):
        assert resolve_models(params.model_copy(update={"reader": other})).reader_version == other.split("+")[0]

    # new labels, a candidate that cannot clear the margin: rejected, the promoted head stays
    _customer_labels(db_url, tmp_path / "more", 2, seed=41)
    second = run(db_url, tmp_path, margin=1.0, **head_only)["answer_head"]
    assert second["decision"] == "rejected" and set(second["heldout"]) == {"candidate", "rules", "promoted"}
    with get_session_factory(db_url).begin() as session:
        assert registry.promoted(session, role="answer_head").version == first["version"]
