"""Retrain the crop policy: gather data, train a candidate, judge it, promote or reject.

Plain Python (no Prefect): `tasks/retrain.py` wraps these steps as tasks, and tests call
them directly with a `RetrainParams`. The promoted policy is only ever changed by `decide`, after the candidate
has beaten it on held-out labels by `margin`; a failure anywhere before leaves it as it
was (the training run is marked failed with its error, its last checkpoint kept).

Data: synthetic documents (with gold value boxes: the SFT warm start needs them) and the
`labels` table (train split to learn from, held-out split to judge on). Artifacts go to the
object store: `training/run-<id>/checkpoint/` (resumable state) and
`policies/<name>-<hash>/` (policy.onnx, config.json, weights.pt, curves.png, report.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.params import RetrainParams
from app.resources import get_reader, get_session_factory
from cropvlm.errors import TrainingError
from cropvlm.labels import Label, field_specs, load_labels
from cropvlm.render import RenderConfig
from cropvlm.specs import BUNDLED_POLICY, build_policy
from cropvlm.training.examples import ExampleSet, build_examples
from cropvlm.training.loop import TrainState, train
from storage import labels as label_store
from storage import registry
from storage.folders import download_folder, upload_folder
from storage.objectstore import read_uri

log = logging.getLogger(__name__)
HELDOUT_SEED_OFFSET = 1_000_003  # synthetic held-out documents never share a seed with training ones
EXPORTED = ("policy.onnx", "config.json", "weights.pt", "curves.png", "curves.json")


@dataclass
class Data:
    train: ExampleSet | None  # None when only held-out data was asked for
    heldout: ExampleSet | None
    fingerprint: str  # of the labels used: new labels, new run
    counts: dict


ProgressFn = Callable[[TrainState], None]


# --- data ---------------------------------------------------------------------------------
def load_data(params: RetrainParams, workdir: Path, *, train: bool = True, heldout: bool = True) -> Data:
    """Training and held-out examples; `train=False` / `heldout=False` leave a side unrendered
    (training never looks at held-out pages, judging never at training ones)."""
    view = int(params.model.get("input_size", 512))  # the policy's input side (see policy_view)
    render = RenderConfig(dpi=params.dpi)
    train_labels, heldout_labels, fingerprint = [], [], []
    if params.synthetic_documents and train:
        train_labels += _synthetic(workdir / "synthetic-train", params.synthetic_documents, params.synthetic_seed, params.dpi)
    if params.synthetic_heldout:
        heldout_labels += _synthetic(workdir / "synthetic-heldout", params.synthetic_heldout,
                                     params.synthetic_seed + HELDOUT_SEED_OFFSET, params.dpi)
    if params.use_labels:
        with get_session_factory(params.database_url).begin() as session:
            current = label_store.current_labels(session)
        for row in current:
            label = Label(row.uri, row.field, row.answer, row.question or row.field, row.page_number,
                          _box(row.box), row.answer_type)
            (heldout_labels if row.split == "heldout" else train_labels).append(label)
            fingerprint.append(f"{row.label_id}")
    if not train_labels and train:
        raise TrainingError("no training labels: import labels (`cropvlm labels import`) or add synthetic documents")
    specs = field_specs(train_labels + heldout_labels)
    train_set = build_examples(train_labels, specs, read_uri, render, view_size=view) if train else None
    grounding = {}
    if train_set is not None and params.grounding and len(train_set.with_boxes()) < len(train_set.examples):
        train_set, grounding = _ground(train_set, params.grounding)
    heldout_set = (build_examples(heldout_labels, specs, read_uri, render, view_size=view)
                   if heldout and heldout_labels else None)
    counts = {"train_examples": len(train_set.examples) if train_set else 0,
              "train_documents": len(train_set.documents) if train_set else 0,
              "heldout_examples": len(heldout_set.examples) if heldout_set else len(heldout_labels),
              "skipped_documents": sum(len(s.skipped) for s in (train_set, heldout_set) if s),
              **({"grounding": grounding} if grounding else {})}
    digest = hashlib.sha256(",".join(fingerprint).encode()).hexdigest()[:16]
    return Data(train_set, heldout_set, digest, counts)


def _synthetic(folder: Path, count: int, seed: int, dpi: int) -> list[Label]:
    from cropvlm.synthetic.dataset import write_dataset

    if not (folder / "labels.jsonl").is_file():  # a resumed run reuses what it generated
        write_dataset(folder, count, seed=seed, dpi=dpi)
    label_set = load_labels(folder)
    return [dataclasses.replace(label, doc=str(folder / label.doc),
                                type=label_set.fields[label.field].type) for label in label_set.labels]


def _ground(train_set: ExampleSet, engine: str) -> tuple[ExampleSet, dict]:
    """Boxes for labelled answers (reviews carry none), so they get an SFT warm start too."""
    from cropvlm.readers.ocr_engines import make_engine
    from cropvlm.training.grounding import ground_answers

    started = time.perf_counter()
    grounded, report = ground_answers(train_set, make_engine(engine))
    summary = {**report.as_dict(), "engine": engine, "seconds": round(time.perf_counter() - started, 1)}
    log.info("grounding: %d answers boxed, %d ambiguous, %d not found (%.0f s)", summary["grounded"],
             summary["ambiguous"], summary["not_found"], summary["seconds"])
    return grounded, summary


def _box(box):
    from cropvlm.box import Box

    return None if box is None else Box(*box)


# --- training -----------------------------------------------------------------------------
def train_candidate(params: RetrainParams, *, flow_run_id: str | None = None, on_step: ProgressFn | None = None) -> dict:
    """Train (or resume) a candidate and register it; returns {version, artifact_uri, run_id, ...}."""
    from cropvlm.heatmap.onnx_policy import HeatmapPolicy
    from cropvlm.training.report import curves_png

    workdir = Path(params.workdir or tempfile.mkdtemp(prefix="cropvlm-retrain-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sessions = get_session_factory(params.database_url)
    data = load_data(params, workdir, heldout=False)  # held-out pages are for `decide` alone
    config_hash = hashlib.sha256(json.dumps({"job": params.settings(), "labels": data.fingerprint},
                                            sort_keys=True, default=str).encode()).hexdigest()
    checkpoint_dir = workdir / "checkpoint"
    with sessions.begin() as session:
        previous = registry.resumable_training_run(session, config_hash)
        parent = registry.promoted(session) if params.init == "promoted" else None
        run_id = previous.id if previous else registry.start_training_run(
            session, config=params.settings(), config_hash=config_hash, flow_run_id=flow_run_id)
    if previous and previous.checkpoint_uri and not (checkpoint_dir / "state.json").is_file():
        log.info("resuming training run %d from %s", run_id, previous.checkpoint_uri)
        download_folder(previous.checkpoint_uri, checkpoint_dir)

    started = time.perf_counter()
    try:
        policy, parent_version = _initial_policy(params, parent, workdir)
        train_config = params.train_config()
        if not data.train.with_boxes() and train_config.sft_steps:
            if params.init == "scratch":
                raise TrainingError("training from scratch needs gold boxes for the SFT warm start "
                                    "(synthetic documents); the labels have none")
            train_config = dataclasses.replace(train_config, sft_steps=0)  # GRPO only, from the parent
        prefix = f"training/run-{run_id}/checkpoint"

        def on_checkpoint(state: TrainState) -> None:
            uri = upload_folder(params.artifacts_uri, prefix, checkpoint_dir)
            with sessions.begin() as session:
                registry.checkpoint_training_run(session, run_id, step=state.step, checkpoint_uri=uri,
                                                 metrics={"phase": state.phase, **_last(state)})

        reader = get_reader(params.judge)
        state = train(policy, data.train, reader, train_config, checkpoint_dir=checkpoint_dir,
                      on_checkpoint=on_checkpoint, on_step=on_step)
        out = workdir / "candidate"
        shutil.rmtree(out, ignore_errors=True)
        # No wall-clock seconds in the config (they go to `metrics`): a rerun after a crash past
        # this point must register the very same candidate, and the registry compares configs.
        if params.size_shift is not None:
            policy.extra_config["size_shift"] = params.size_shift
        policy.extra_config = {**policy.extra_config, "trained": {
            "judge": params.judge, "parent": parent_version, "settings": params.settings(),
            "data": _without_seconds(data.counts), "sft_steps": len(state.sft_curve),
            "grpo_steps": len(state.grpo_curve)}}
        policy.save(out)
        phases = " then ".join(name for name, curve in (("SFT", state.sft_curve), ("GRPO", state.grpo_curve)) if curve)
        curves_png(state.sft_curve, state.grpo_curve, out / "curves.png", title=f"{params.name}: {phases or 'no steps'}")
        (out / "curves.json").write_text(json.dumps({"sft": state.sft_curve, "grpo": state.grpo_curve}))
        version = HeatmapPolicy(out).version
        artifact_uri = upload_folder(params.artifacts_uri, f"policies/{version.split(':', 1)[1].replace('#', '-')}", out)
        metrics = {"train_seconds": round(time.perf_counter() - started, 1), **data.counts, **_last(state)}
        registered_parent = parent.version if parent is not None else None  # the bundled one is not registered
        with sessions.begin() as session:
            registry.register_candidate(session, version=version, kind="heatmap", artifact_uri=artifact_uri,
                                        config=policy.config(), metrics=metrics, parent_version=registered_parent,
                                        reader=params.judge, training_run_id=run_id)
            registry.finish_training_run(session, run_id, status="completed", metrics=metrics)
        return {"version": version, "artifact_uri": artifact_uri, "run_id": run_id, "folder": str(out),
                "parent": parent_version, "metrics": metrics, "resumed": previous is not None}
    except Exception as exc:
        with sessions.begin() as session:
            registry.finish_training_run(session, run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise


def _without_seconds(counts: dict) -> dict:
    return {k: _without_seconds(v) if isinstance(v, dict) else v for k, v in counts.items() if k != "seconds"}


def _initial_policy(params: RetrainParams, parent, workdir: Path):
    from cropvlm.heatmap.trainable import TrainableHeatmapPolicy

    if params.init == "scratch":
        import torch

        from cropvlm.heatmap.geometry import Geometry
        from cropvlm.heatmap.network import HeatmapNet

        torch.manual_seed(params.train["seed"])
        model = dict(params.model)
        geometry = Geometry(**{k: model.pop(k) for k in ("input_size", "size_bins", "min_side", "max_side") if k in model})
        net = HeatmapNet(size_bins=geometry.size_bins, **model)
        return TrainableHeatmapPolicy(net, geometry, name=params.name), None
    if parent is not None:
        folder = download_folder(parent.artifact_uri, workdir / "parent")
        policy = TrainableHeatmapPolicy.load(folder)
        policy.name = params.name
        return policy, parent.version
    if (BUNDLED_POLICY / "weights.pt").is_file():
        policy = TrainableHeatmapPolicy.load(BUNDLED_POLICY)
        policy.name = params.name
        return policy, build_policy("default").version
    raise TrainingError("init='promoted' but no policy is promoted and none is bundled: use init='scratch'")


def _last(state: TrainState) -> dict:
    tail = state.grpo_curve[-20:]
    if tail:
        return {"reward_last20": round(sum(p["reward"] for p in tail) / len(tail), 4)}
    tail = state.sft_curve[-20:]
    return {"sft_loss_last20": round(sum(p["loss"] for p in tail) / len(tail), 4)} if tail else {}


# --- promotion ----------------------------------------------------------------------------
def decide(params: RetrainParams, candidate: dict) -> dict:
    """Judge the candidate against the incumbent on held-out examples with the same reader;
    promote it only if it wins by `params.margin`. Returns the decision and the numbers."""
    from cropvlm.training.heldout import evaluate_policies

    sessions = get_session_factory(params.database_url)
    workdir = Path(params.workdir or tempfile.mkdtemp(prefix="cropvlm-decide-"))
    data = load_data(params, workdir, train=False)
    with sessions.begin() as session:
        incumbent = registry.promoted(session)
    policies = {"candidate": build_policy(f"heatmap:{candidate['folder']}")}
    if incumbent is not None:
        policies["promoted"] = build_policy(f"heatmap:{download_folder(incumbent.artifact_uri, workdir / 'incumbent')}")
    if candidate["parent"] is not None and (incumbent is None or candidate["parent"] != incumbent.version):
        policies["parent"] = build_policy("default")  # trained from the bundled policy: report it beside
    policies["full"] = build_policy("full")  # what extraction uses while nothing is promoted
    if data.heldout is None:
        note = "no held-out labels to judge it on: left a candidate"
        return {"decision": "candidate", "note": note, "heldout": {}}
    scores = evaluate_policies(policies, data.heldout, get_reader(params.judge), limit=params.heldout_limit)
    bar_name = "promoted" if "promoted" in policies else "full"
    bar = scores[bar_name]["exact"]
    won = scores["candidate"]["exact"] >= bar + params.margin
    note = (f"held-out exact {scores['candidate']['exact']:.3f} vs {bar_name} {bar:.3f} "
            f"(margin {params.margin:g}, n={scores['candidate']['n']}, judge {params.judge})")
    with sessions.begin() as session:
        registry.update_metrics(session, candidate["version"], {**candidate["metrics"], "heldout": scores})
        if won:
            registry.promote(session, candidate["version"], note=note)
        else:
            registry.reject(session, candidate["version"], note=note)
    return {"decision": "promoted" if won else "rejected", "note": note, "heldout": scores}


def export(folder: str, dest: str) -> Path:
    """Copy a candidate's serving files (and its curves) into `dest`, e.g. the bundled policy."""
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    for name in EXPORTED:
        if (Path(folder) / name).is_file():
            shutil.copy2(Path(folder) / name, out / name)
    return out
