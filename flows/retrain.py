"""The `retrain` flow: train a candidate crop policy, judge it on held-out labels, promote it
only if it beats the promoted one.

    cropvlm retrain --synthetic 600 --init scratch       # by hand (embedded SQLite)
    prefect deploy --name retrain                        # scheduled (prefect.yaml), or as a subflow

data (synthetic documents + the labels table) -> SFT warm start -> GRPO with the frozen
reader as judge -> candidate in the object store and `policy_versions` -> held-out accuracy
against the promoted policy -> promoted or rejected. Artifacts: training progress, and a
markdown report with the held-out table and the reward curve's location.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact
from prefect.runtime import flow_run

from app.retrain import RetrainJob
from cropvlm.specs import DEFAULT_READER
from cropvlm.training.grpo import GrpoConfig
from cropvlm.training.loop import TrainConfig
from cropvlm.training.report import summary_markdown
from storage.db import prepare_database
from storage.settings import Settings
from tasks.retrain import decide_task, train_candidate_task

EXPORTED = ("policy.onnx", "config.json", "weights.pt", "curves.png", "curves.json")


@flow(name="retrain")
def retrain(
    judge: str = DEFAULT_READER,
    init: str = "promoted",
    synthetic_documents: int = 0,
    synthetic_heldout: int = 0,
    synthetic_seed: int = 0,
    use_labels: bool = True,
    grounding: str | None = "rapidocr",
    margin: float = 0.02,
    size_shift: int | None = None,
    train: dict | None = None,
    model: dict | None = None,
    workdir: str | None = None,
    database_url: str | None = None,
    artifacts_uri: str | None = None,
    gpu_limit: str | None = "gpu",
    export_to: str | None = None,
) -> dict:
    """Returns {candidate, decision, note, heldout}. `train` overrides TrainConfig fields
    (e.g. {"sft_steps": 0, "grpo": {"steps": 50}})."""
    logger = get_run_logger()
    settings = Settings()
    database_url = database_url or settings.database_url
    artifacts_uri = artifacts_uri or settings.artifacts_uri
    prepare_database(database_url)
    job = RetrainJob(
        database_url=database_url, artifacts_uri=artifacts_uri, judge=judge, init=init,
        synthetic_documents=synthetic_documents, synthetic_heldout=synthetic_heldout,
        synthetic_seed=synthetic_seed, use_labels=use_labels, grounding=grounding, margin=margin,
        size_shift=size_shift,
        train=train_config(train), model=dict(model or {}), workdir=workdir,
    )
    progress = create_progress_artifact(0.0, key="retrain-progress", description="SFT + GRPO steps")
    candidate = train_candidate_task(job, flow_run_id=str(flow_run.id) if flow_run.id else None,
                                     gpu_limit=gpu_limit, progress_artifact=progress)
    logger.info("candidate %s (run %s%s)", candidate["version"], candidate["run_id"],
                ", resumed" if candidate["resumed"] else "")
    decision = decide_task(job, candidate, gpu_limit=gpu_limit)
    logger.info("%s: %s", decision["decision"], decision["note"])
    create_markdown_artifact(
        summary_markdown(f"Retrain: {candidate['version']} {decision['decision']}", decision["heldout"], {
            "decision": decision["note"], "parent": candidate["parent"],
            "reward curve": f"{candidate['artifact_uri']}/curves.png", **candidate["metrics"]}),
        key="retrain-report", description="held-out accuracy and training summary")
    if export_to:
        export(candidate["folder"], export_to)
    return {"candidate": candidate["version"], "artifact_uri": candidate["artifact_uri"], **decision}


def train_config(overrides: dict | None) -> TrainConfig:
    overrides = dict(overrides or {})
    grpo = dataclasses.replace(GrpoConfig(), **overrides.pop("grpo", {}))
    return TrainConfig.from_dict({**overrides, "grpo": dataclasses.asdict(grpo)})


def export(folder: str, dest: str) -> Path:
    """Copy a candidate's serving files (and its curves) into `dest`, e.g. the bundled policy."""
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    for name in EXPORTED:
        if (Path(folder) / name).is_file():
            shutil.copy2(Path(folder) / name, out / name)
    return out
