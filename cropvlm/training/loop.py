"""The training run: SFT warm start, then GRPO against the frozen reader, with checkpoints.

    state = train(policy, train_set, reader, config, checkpoint_dir=..., on_checkpoint=...)

Two phases, each resumable: every `checkpoint_every` steps the policy weights, the
optimizer state and the curves are written to `checkpoint_dir` (and `on_checkpoint` is
called, e.g. to copy them to the object store); `train(..., resume=True)` picks up from
the last checkpoint, so a worker that dies loses at most `checkpoint_every` steps.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from cropvlm.errors import TrainingError
from cropvlm.policies.base import CropRequest
from cropvlm.sft_boxes import enlarge_box, quintile_edges
from cropvlm.training.examples import Example, ExampleSet
from cropvlm.training.grpo import GrpoConfig, grpo_step, lr_factor
from cropvlm.training.rewarding import ReaderJudge

log = logging.getLogger(__name__)
STATE_FILE, OPTIMIZER_FILE, REFERENCE_DIR = "state.json", "optimizer.pt", "reference"


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    sft_steps: int = 1200
    sft_pages_per_step: int = 4
    sft_learning_rate: float = 2e-3
    sft_warmup_ratio: float = 0.03
    weight_decay: float = 1e-4
    grpo: GrpoConfig = field(default_factory=GrpoConfig)
    checkpoint_every: int = 50

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise TrainingError(f"unknown training settings {sorted(unknown)}")
        data = dict(data)
        if isinstance(data.get("grpo"), dict):
            data["grpo"] = GrpoConfig(**data["grpo"])
        return cls(**data)


@dataclass
class TrainState:
    phase: str = "sft"  # sft -> grpo -> done
    step: int = 0  # next step of the current phase
    sft_curve: list[dict] = field(default_factory=list)  # {"step", "loss"}
    grpo_curve: list[dict] = field(default_factory=list)  # StepStats as dicts
    seconds: float = 0.0


Progress = Callable[[TrainState], None]


def progress_line(state: TrainState, config: TrainConfig) -> str:
    """One line on where training stands, for logs: the phase, the step and its last point."""
    if state.phase == "grpo" and state.grpo_curve:
        p = state.grpo_curve[-1]
        return (f"GRPO step {p['step'] + 1}/{config.grpo.steps}: reward {p['reward']:.3f} "
                f"(group std {p['reward_std']:.3f}), kl {p['kl']:.4f}, {p['seconds']:.0f} s")
    if state.sft_curve:
        p = state.sft_curve[-1]
        return f"SFT step {p['step'] + 1}/{config.sft_steps}: loss {p['loss']:.4f}, {p['seconds']:.0f} s"
    return f"{state.phase} step {state.step}"


def train(policy, train_set: ExampleSet, reader, config: TrainConfig, *, checkpoint_dir: str | Path,
          resume: bool = True, on_checkpoint: Progress | None = None, on_step: Progress | None = None,
          reference=None) -> TrainState:
    """Run (or resume) both phases; returns the final state. The policy is trained in place."""
    checkpoint_dir = Path(checkpoint_dir)
    state = TrainState()
    optimizer_state = None
    if resume and (checkpoint_dir / STATE_FILE).is_file():
        state, optimizer_state = _load_checkpoint(policy, checkpoint_dir)
        log.info("resuming training at %s step %d", state.phase, state.step)
    started = time.perf_counter() - state.seconds

    def elapsed() -> float:  # training seconds so far, across resumes (curves carry it)
        return round(time.perf_counter() - started, 2)

    def checkpoint(optimizer) -> None:
        state.seconds = time.perf_counter() - started
        _save_checkpoint(policy, optimizer, state, checkpoint_dir)
        if on_checkpoint:
            on_checkpoint(state)

    if state.phase == "sft":
        optimizer = _optimizer(policy, config.sft_learning_rate, config.weight_decay, optimizer_state)
        optimizer_state = None
        _sft(policy, train_set, config, state, optimizer, checkpoint, on_step, elapsed)
        state.phase, state.step = "grpo", 0
        policy.save(checkpoint_dir / REFERENCE_DIR, onnx=False)  # the KL anchor, also after a resume
        checkpoint(None)
    if state.phase == "grpo" and config.grpo.steps > 0:
        if reference is None:
            reference = policy.frozen_copy()
            if (checkpoint_dir / REFERENCE_DIR).is_dir():
                reference.load_weights(checkpoint_dir / REFERENCE_DIR)
        optimizer = _optimizer(policy, config.grpo.learning_rate, 0.0, optimizer_state)
        _grpo(policy, reference, train_set, reader, config, state, optimizer, checkpoint, on_step, elapsed)
    state.phase = "done"
    checkpoint(None)
    return state


def _sft(policy, train_set: ExampleSet, config: TrainConfig, state: TrainState, optimizer, checkpoint, on_step,
         elapsed) -> None:
    if config.sft_steps == 0:  # e.g. retraining on reviewed answers, which carry no boxes
        return
    boxed = train_set.with_boxes()
    if not boxed:
        raise TrainingError("SFT needs examples with gold boxes (e.g. synthetic documents); none given")
    edges = quintile_edges([e.gold_box.area for e in boxed])
    pages: dict[tuple[str, int], list[Example]] = {}
    for e in boxed:
        pages.setdefault((e.doc, e.page_number), []).append(e)
    keys = sorted(pages)
    rng = random.Random(f"sft:{config.seed}")
    per_step = min(config.sft_pages_per_step, len(keys))
    order: list[tuple[str, int]] = []
    for _ in range(state.step * per_step):  # replay the sampler to resume exactly
        order = order or rng.sample(keys, len(keys))
        order.pop()
    while state.step < config.sft_steps:
        chosen = []
        for _ in range(per_step):
            order = order or rng.sample(keys, len(keys))
            chosen.append(order.pop())
        batch = [e for key in chosen for e in pages[key]]
        requests = [CropRequest(train_set.view(e), e.spec.question, e.spec.field) for e in batch]
        lr = config.sft_learning_rate * lr_factor(state.step, config.sft_steps, config.sft_warmup_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = policy.sft_loss(requests, [enlarge_box(e.gold_box, edges) for e in batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        state.sft_curve.append({"step": state.step, "loss": round(float(loss.detach()), 5), "lr": lr,
                                "seconds": elapsed()})
        state.step += 1
        if on_step:
            on_step(state)
        if state.step % config.checkpoint_every == 0:
            checkpoint(optimizer)


def _grpo(policy, reference, train_set: ExampleSet, reader, config: TrainConfig, state: TrainState,
          optimizer, checkpoint, on_step, elapsed) -> None:
    grpo = config.grpo
    judge = ReaderJudge(reader, grpo.reward_weights, train_set)
    examples = list(train_set.examples)
    while state.step < grpo.steps:
        rng = random.Random(f"grpo:{config.seed}:{state.step}")  # per step: resumes identically
        batch = rng.sample(examples, min(grpo.prompts_per_step, len(examples)))
        # the page object must be shared by requests of one page (policies batch by page)
        requests = [CropRequest(train_set.view(e), e.spec.question, e.spec.field) for e in batch]
        torch.manual_seed(hash((config.seed, state.step)) & 0xFFFFFFFF)
        stats = grpo_step(policy, reference, optimizer, requests, lambda s: judge(batch, s), grpo, state.step)
        point = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(stats).items()}
        state.grpo_curve.append({**point, "seconds": elapsed()})
        state.step += 1
        if on_step:
            on_step(state)
        if state.step % config.checkpoint_every == 0:
            checkpoint(optimizer)


def _optimizer(policy, lr: float, weight_decay: float, saved: dict | None):
    optimizer = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=weight_decay)
    if saved is not None:
        optimizer.load_state_dict(saved)
    return optimizer


def _save_checkpoint(policy, optimizer, state: TrainState, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    policy.save(folder, onnx=False)
    if optimizer is not None:
        torch.save(optimizer.state_dict(), folder / OPTIMIZER_FILE)
    else:
        (folder / OPTIMIZER_FILE).unlink(missing_ok=True)  # a phase boundary: the next starts fresh
    tmp = folder / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(state)))
    tmp.replace(folder / STATE_FILE)  # the state is written last: a torn checkpoint is never resumed


def _load_checkpoint(policy, folder: Path) -> tuple[TrainState, dict | None]:
    state = TrainState(**json.loads((folder / STATE_FILE).read_text()))
    policy.load_weights(folder)
    optimizer = folder / OPTIMIZER_FILE
    saved = torch.load(optimizer, map_location="cpu", weights_only=False) if optimizer.is_file() else None
    return state, saved
