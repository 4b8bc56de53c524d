"""The training run: both phases, checkpoints, exact resume, and failures that lose nothing."""

from __future__ import annotations

import pytest
import torch

from cropvlm.errors import TrainingError
from cropvlm.labels import Label
from cropvlm.render import RenderConfig
from cropvlm.training.examples import build_examples
from cropvlm.training.grpo import GrpoConfig
from cropvlm.training.loop import STATE_FILE, TrainConfig, progress_line, train
from tests.training.conftest import SPECS, PatchReader, patch_dataset
from tests.training.test_heatmap_policy import SMALL, small_policy

CONFIG = TrainConfig(sft_steps=4, sft_pages_per_step=2, checkpoint_every=2,
                     grpo=GrpoConfig(steps=4, prompts_per_step=4, num_generations=3, learning_rate=1e-3,
                                     reward_weights={"accuracy": 1.0, "format": 1.0, "area": 0.2}))


@pytest.fixture(scope="module")
def examples():
    files, labels = patch_dataset(4)
    return build_examples(labels, SPECS, files.__getitem__, RenderConfig(), view_size=SMALL.input_size)


class Stop(Exception):
    pass


def test_both_phases_run_and_leave_a_resumable_checkpoint(examples, tmp_path):
    policy = small_policy(1)
    logged = []
    state = train(policy, examples, PatchReader(), CONFIG, checkpoint_dir=tmp_path,
                  on_step=lambda s: logged.append(progress_line(s, CONFIG)))
    assert state.phase == "done"
    assert len(logged) == 8 and logged[0].startswith("SFT step 1/4: loss ")
    assert logged[4].startswith("GRPO step 1/4: reward ") and "group std" in logged[4]
    assert [p["step"] for p in state.sft_curve] == [0, 1, 2, 3]
    assert [p["step"] for p in state.grpo_curve] == [0, 1, 2, 3]
    assert all(0.0 <= p["components"]["accuracy"] <= 1.0 for p in state.grpo_curve)
    seconds = [p["seconds"] for p in state.sft_curve + state.grpo_curve]
    assert seconds == sorted(seconds) and seconds[0] > 0  # elapsed training time, for budgets
    assert (tmp_path / STATE_FILE).is_file() and (tmp_path / "reference" / "weights.pt").is_file()


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(examples, tmp_path):
    whole = small_policy(2)
    train(whole, examples, PatchReader(), CONFIG, checkpoint_dir=tmp_path / "whole")

    def die_in_grpo(state):
        if state.phase == "grpo" and state.step == 3:  # after the checkpoint at step 2
            raise Stop

    broken = small_policy(2)
    with pytest.raises(Stop):
        train(broken, examples, PatchReader(), CONFIG, checkpoint_dir=tmp_path / "resumed", on_step=die_in_grpo)
    resumed = small_policy(99)  # a fresh worker: different initial weights, all restored
    state = train(resumed, examples, PatchReader(), CONFIG, checkpoint_dir=tmp_path / "resumed")
    assert [p["step"] for p in state.grpo_curve] == [0, 1, 2, 3]
    for a, b in zip(whole.net.state_dict().values(), resumed.net.state_dict().values()):
        assert torch.equal(a, b)


def test_a_reader_that_fails_mid_training_stops_it_with_a_clear_error(examples, tmp_path):
    policy = small_policy(3)
    with pytest.raises(TrainingError, match="reader test:patch-reader failed: RuntimeError: reader went away"):
        train(policy, examples, PatchReader(fail_after_calls=2), CONFIG, checkpoint_dir=tmp_path)
    # the checkpoint before the failure is intact: a rerun with a working reader completes
    state = train(small_policy(3), examples, PatchReader(), CONFIG, checkpoint_dir=tmp_path)
    assert state.phase == "done" and len(state.grpo_curve) == 4


def test_sft_without_gold_boxes_is_refused(examples, tmp_path):
    no_boxes = type(examples)([e.__class__(e.doc, e.page_number, e.spec, e.answer, None) for e in examples.examples],
                              examples.views, examples.pages)
    with pytest.raises(TrainingError, match="gold boxes"):
        train(small_policy(), no_boxes, PatchReader(), CONFIG, checkpoint_dir=tmp_path)


def test_unreadable_documents_are_skipped_and_no_examples_is_an_error():
    files, labels = patch_dataset(2)
    files["doc1.png"] = b"not an image"
    examples = build_examples(labels, SPECS, files.__getitem__, RenderConfig(), view_size=SMALL.input_size)
    assert examples.documents == ["doc0.png"] and "doc1.png" in examples.skipped
    with pytest.raises(TrainingError, match="no usable training examples"):
        build_examples([Label("doc1.png", "alpha", "A", "q")], SPECS, files.__getitem__, RenderConfig())


def test_reviewed_answers_without_boxes_train_with_grpo_alone(examples, tmp_path):
    no_boxes = type(examples)([e.__class__(e.doc, e.page_number, e.spec, e.answer, None) for e in examples.examples],
                              examples.views, examples.pages)
    config = TrainConfig(sft_steps=0, checkpoint_every=2, grpo=CONFIG.grpo)
    state = train(small_policy(4), no_boxes, PatchReader(), config, checkpoint_dir=tmp_path)
    assert state.sft_curve == [] and len(state.grpo_curve) == 4
