"""The `retrain` flow: train a candidate crop policy, judge it on held-out labels, promote it
only if it beats the promoted one; the same for the OCR reader's answer head, fitted on the
labels' train split (app/retrain_head.py).

    cropvlm retrain --synthetic 600 --init scratch       # by hand (embedded SQLite)
    prefect deploy --name retrain                        # scheduled (prefect.yaml), or as a subflow

labels table (train split) -> answer head -> held-out exact against the promoted head (or the
rules) -> promoted or rejected; skipped with its reason below `head_min_documents`.
data (synthetic documents + the labels table) -> SFT warm start -> GRPO with the frozen
reader as judge -> candidate in the object store and `policy_versions` -> held-out accuracy
against the promoted policy -> promoted or rejected. Artifacts: training progress, and a
markdown report with the held-out table and the reward curve's location.
Parameters: `RetrainParams` (app/params.py), where their defaults and meaning are.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact
from prefect.runtime import flow_run

from app.params import Init, RetrainParams, defaults
from app.retrain import export
from cropvlm.training.report import summary_markdown
from storage.db import prepare_database
from tasks.device import existing_limit
from tasks.retrain import decide_head_task, decide_task, fit_head_task, train_candidate_task

DEFAULT = defaults(RetrainParams)


@flow(name="retrain")
def retrain(
    judge: str = DEFAULT.judge,
    init: Init = DEFAULT.init,
    name: str = DEFAULT.name,
    synthetic_documents: int = DEFAULT.synthetic_documents,
    synthetic_heldout: int = DEFAULT.synthetic_heldout,
    synthetic_seed: int = DEFAULT.synthetic_seed,
    use_labels: bool = DEFAULT.use_labels,
    grounding: str | None = DEFAULT.grounding,
    margin: float = DEFAULT.margin,
    size_shift: int | None = DEFAULT.size_shift,
    dpi: int = DEFAULT.dpi,
    heldout_limit: int | None = DEFAULT.heldout_limit,
    train: dict = DEFAULT.train,
    model: dict = DEFAULT.model,
    workdir: str | None = DEFAULT.workdir,
    database_url: str | None = DEFAULT.database_url,
    artifacts_uri: str | None = DEFAULT.artifacts_uri,
    gpu_limit: str | None = DEFAULT.gpu_limit,
    export_to: str | None = DEFAULT.export_to,
    train_policy: bool = DEFAULT.train_policy,
    answer_head: bool = DEFAULT.answer_head,
    head_min_documents: int = DEFAULT.head_min_documents,
    templates: list[str] = DEFAULT.templates,
) -> dict:
    """Returns {candidate, artifact_uri, decision, note, heldout, answer_head} (the policy's
    keys None when `train_policy` is off; answer_head: {decision, note, version, heldout})."""
    params = RetrainParams(**locals())  # validated once: the tasks read the model
    logger = get_run_logger()
    prepare_database(params.database_url)
    head = {"decision": "skipped", "note": "answer head off (answer_head or use_labels false)", "heldout": {}}
    if params.answer_head and params.use_labels:
        head = decide_head_task(params, fit_head_task(params))
        logger.info("answer head %s: %s", head["decision"], head["note"])
        create_markdown_artifact(_head_report(head), key="retrain-answer-head",
                                 description="answer head: held-out accuracy and decision")
    if not params.train_policy:
        return {"candidate": None, "artifact_uri": None, "decision": "not trained", "note": "train_policy off",
                "heldout": {}, "answer_head": head}
    gpu_limit = existing_limit(params.gpu_limit, logger)
    progress = create_progress_artifact(0.0, key="retrain-progress", description="SFT + GRPO steps")
    candidate = train_candidate_task(params, flow_run_id=str(flow_run.id) if flow_run.id else None,
                                     gpu_limit=gpu_limit, progress_artifact=progress)
    logger.info("candidate %s (run %s%s)", candidate["version"], candidate["run_id"],
                ", resumed" if candidate["resumed"] else "")
    decision = decide_task(params, candidate, gpu_limit=gpu_limit)
    logger.info("%s: %s", decision["decision"], decision["note"])
    create_markdown_artifact(
        summary_markdown(f"Retrain: {candidate['version']} {decision['decision']}", decision["heldout"], {
            "decision": decision["note"], "parent": candidate["parent"],
            "reward curve": f"{candidate['artifact_uri']}/curves.png", **candidate["metrics"]}),
        key="retrain-report", description="held-out accuracy and training summary")
    if params.export_to:
        export(candidate["folder"], params.export_to)
    return {"candidate": candidate["version"], "artifact_uri": candidate["artifact_uri"], **decision,
            "answer_head": head}


def _head_report(head: dict) -> str:
    lines = [f"# Answer head: {head.get('version', '')} {head['decision']}", "", head["note"], ""]
    if head["heldout"]:
        lines += ["| reader | n | exact | calibration error | answers at confidence >= 0.5 | exact among them |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, s in head["heldout"].items():
            lines.append(f"| {name} | {s['n']} | {s['exact']:.3f} | {s.get('ece', float('nan')):.3f} | "
                         f"{s.get('share_at_0.5', float('nan')):.3f} | {s.get('exact_at_0.5', float('nan')):.3f} |")
    return "\n".join(lines)
