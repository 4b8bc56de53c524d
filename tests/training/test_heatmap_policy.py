"""The heatmap policy: geometry, sampling and log-probs, SFT, ONNX export parity, loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cropvlm.box import Box
from cropvlm.errors import PolicyError
from cropvlm.heatmap.geometry import Geometry, Letterbox, cell_mask, decode_box, encode_box, letterbox
from cropvlm.heatmap.onnx_policy import HeatmapPolicy
from cropvlm.heatmap.question import question_features
from cropvlm.heatmap.trainable import TrainableHeatmapPolicy
from cropvlm.policies.base import CropRequest
from cropvlm.specs import build_policy
from tests.training.conftest import SPECS, patch_page

SMALL = Geometry(input_size=128, stride=16, size_bins=6, min_side=0.1)


def small_policy(seed: int = 0) -> TrainableHeatmapPolicy:
    torch.manual_seed(seed)
    from cropvlm.heatmap.network import HeatmapNet

    return TrainableHeatmapPolicy(HeatmapNet(size_bins=SMALL.size_bins, width=16, embed=16), SMALL, name="small")


def requests_for(pages) -> list[CropRequest]:
    return [CropRequest(page, spec.question, spec.field) for page in pages for spec in SPECS.values()]


def test_decode_then_encode_gives_back_the_choices():
    geometry = Geometry()
    placement = Letterbox(362, 512)  # an A4 page letterboxed
    mask = cell_mask(placement, geometry)
    for cell in np.flatnonzero(mask)[::37]:
        for w, h in [(0, 0), (5, 7), (13, 13)]:
            box = decode_box(int(cell), w, h, placement, geometry)
            again = encode_box(box, placement, geometry)
            assert again[1:] == (w, h)
            if w < 5 and h < 5:  # small boxes keep their centre cell (big ones are shifted inside)
                assert again[0] == cell


def test_cells_off_the_page_are_masked_and_never_decoded():
    geometry = Geometry()
    from PIL import Image

    canvas, placement = letterbox(Image.new("RGB", (400, 1200), "white"), geometry)
    assert placement == Letterbox(171, 512)
    assert canvas[0, :, 171:].max() == 0.0  # no ink on the padding
    mask = cell_mask(placement, geometry).reshape(geometry.grid, geometry.grid)
    assert mask[:, :10].all() and not mask[:, 11:].any()


def test_question_features_are_stable_and_share_trigrams():
    a, b, c = (question_features(q) for q in ("What is the total?", "What is the totals?", "Invoice date?"))
    assert np.isclose(np.linalg.norm(a), 1.0)
    assert np.array_equal(a, question_features("what is the TOTAL?"))
    assert float(a @ b) > float(a @ c)


def test_sample_logprobs_match_rescoring_and_carry_a_gradient():
    policy = small_policy()
    pages = [patch_page(i)[0] for i in range(2)]
    requests = requests_for(pages)
    torch.manual_seed(1)
    samples = policy.sample(requests, num_samples=3, temperature=0.8)
    assert len(samples.texts) == 12 and samples.group == [g for g in range(4) for _ in range(3)]
    assert all(p.valid and Box.parse(t) == p.box for t, p in zip(samples.texts, samples.proposals))
    repeated = [requests[g] for g in samples.group]
    again, mask = policy.logprobs(repeated, samples.completion_ids, temperature=0.8, grad=False)
    assert mask.all()
    assert torch.allclose(again, samples.token_logprobs.detach(), atol=1e-5)
    samples.logprobs.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.parameters())


def test_sft_fits_the_target_boxes():
    policy = small_policy()
    pages, boxes = zip(*(patch_page(i) for i in range(3)))
    requests = requests_for(pages)
    targets = [b[spec.field].scaled(4) for b in boxes for spec in SPECS.values()]
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = policy.sft_loss(requests, targets)
        first = first if first is not None else float(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss) < first - 1.0  # soft targets: the floor is their entropy, not 0
    hits = [p.box.iou(t) > 0.3 for p, t in zip(policy.propose(requests), targets)]
    assert sum(hits) >= 5, [(p.text, t.format()) for p, t in zip(policy.propose(requests), targets)]


def test_onnx_export_proposes_what_torch_proposes(tmp_path):
    policy = small_policy(3)
    folder = policy.save(tmp_path / "policy")
    served = HeatmapPolicy(folder)
    requests = requests_for([patch_page(i)[0] for i in range(3)])
    assert [p.text for p in served.propose(requests)] == [p.text for p in policy.propose(requests)]
    assert served.version.startswith("heatmap:small#")
    assert build_policy(f"heatmap:{folder}").version == served.version
    other = small_policy(4).save(tmp_path / "other")
    assert HeatmapPolicy(other).version != served.version  # the version names the weights


def test_size_shift_widens_the_served_boxes_and_names_itself(tmp_path):
    policy = small_policy(9)  # boxes below the largest size bin
    plain_folder = policy.save(tmp_path / "plain")
    policy.extra_config["size_shift"] = 2
    folder = policy.save(tmp_path / "shifted")
    requests = requests_for([patch_page(i)[0] for i in range(3)])
    plain, served = HeatmapPolicy(plain_folder), HeatmapPolicy(folder)
    assert served.size_shift == 2 and served.version == plain.version + "+size+2"
    wide, narrow = served.propose(requests), plain.propose(requests)
    assert [p.text for p in wide] == [p.text for p in policy.propose(requests)]  # torch decodes alike
    assert all(w.box.x2 - w.box.x1 >= n.box.x2 - n.box.x1 and w.box.y2 - w.box.y1 >= n.box.y2 - n.box.y1
               for w, n in zip(wide, narrow))
    assert sum(w.box.area > n.box.area for w, n in zip(wide, narrow)) >= len(requests) // 2
    assert [p.text for p in HeatmapPolicy(folder, size_shift=0).propose(requests)] == [p.text for p in narrow]


def test_sampled_boxes_are_judged_as_served_but_scored_as_sampled():
    policy = small_policy(9)
    requests = requests_for([patch_page(i)[0] for i in range(2)])
    torch.manual_seed(0)
    plain = policy.sample(requests, num_samples=4)
    policy.extra_config["size_shift"] = 2
    torch.manual_seed(0)
    served = policy.sample(requests, num_samples=4)
    assert torch.equal(served.completion_ids, plain.completion_ids)  # the same choices sampled
    assert torch.allclose(served.token_logprobs, plain.token_logprobs)  # and updated on
    sides = [((w.box.x2 - w.box.x1, w.box.y2 - w.box.y1), (n.box.x2 - n.box.x1, n.box.y2 - n.box.y1))
             for w, n in zip(served.proposals, plain.proposals)]
    assert all(ws >= ns - 1e-6 for wide, narrow in sides for ws, ns in zip(wide, narrow))
    assert sum(wide[0] * wide[1] > narrow[0] * narrow[1] for wide, narrow in sides) >= len(sides) // 2


def test_reloaded_weights_are_identical(tmp_path):
    policy = small_policy(5)
    folder = policy.save(tmp_path / "p", onnx=False)
    again = TrainableHeatmapPolicy.load(folder)
    requests = requests_for([patch_page(9)[0]])
    assert [p.text for p in again.propose(requests)] == [p.text for p in policy.propose(requests)]


def test_a_missing_policy_folder_is_a_clear_error(tmp_path):
    with pytest.raises(PolicyError, match="config.json"):
        HeatmapPolicy(tmp_path / "nope")


def test_the_shipped_default_policy_loads_fits_the_budget_and_emits_valid_boxes():
    from cropvlm.specs import BUNDLED_POLICY

    size = sum(p.stat().st_size for p in BUNDLED_POLICY.iterdir())
    assert size <= 20 * 2**20
    policy = build_policy("default")
    assert policy.version.startswith("heatmap:")
    trained = __import__("json").loads((BUNDLED_POLICY / "config.json").read_text())["trained"]
    assert trained["parent"] is None and trained["sft_steps"] > 0 and trained["grpo_steps"] > 0
    proposals = policy.propose(requests_for([patch_page(i)[0] for i in range(2)]))
    assert all(p.valid and Box.parse(p.text) == p.box for p in proposals)
