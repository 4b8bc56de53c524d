"""Prefect tasks of the retrain flow: thin adapters around app/retrain.py.

Training holds the device slot (tasks/device.py) for its whole length (it is model work
from end to end); judging the candidate holds it too. Progress goes to a Prefect progress
artifact every few steps. No retries: a rerun of the flow resumes from the last checkpoint
of the same settings (recorded in `training_runs`), which is the recovery path when a
worker dies.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import update_progress_artifact

from app.params import RetrainParams
from app.retrain import decide, train_candidate
from app.retrain_head import decide_head, fit_head_candidate
from cropvlm.training.loop import progress_line
from tasks.device import GPU_TAG, model_slot


@task(tags=[GPU_TAG])
def train_candidate_task(params: RetrainParams, *, flow_run_id: str | None, gpu_limit: str | None,
                         progress_artifact=None) -> dict:
    config = params.train_config()
    total = config.sft_steps + config.grpo.steps
    logger = get_run_logger()

    def on_step(state) -> None:
        done = state.step + (config.sft_steps if state.phase != "sft" else 0)
        if done % 10 == 0 or done == total:
            logger.info(progress_line(state, config))
            if progress_artifact is not None:
                update_progress_artifact(progress_artifact, progress=100.0 * done / max(1, total))

    with model_slot(gpu_limit)():
        return train_candidate(params, flow_run_id=flow_run_id, on_step=on_step)


@task(tags=[GPU_TAG])
def decide_task(params: RetrainParams, candidate: dict, *, gpu_limit: str | None) -> dict:
    with model_slot(gpu_limit)():
        return decide(params, candidate)


# The answer head's steps are OCR on the CPU and a few seconds of LightGBM: no device slot.
@task
def fit_head_task(params: RetrainParams) -> dict:
    return fit_head_candidate(params)


@task
def decide_head_task(params: RetrainParams, candidate: dict) -> dict:
    return decide_head(params, candidate)
