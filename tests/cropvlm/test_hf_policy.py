"""HfPolicy on tiny random-weight checkpoints: greedy boxes, sampling with log-probs, LoRA,
crop_then_answer end to end with the HF reader, and the trainable-policy protocol (SFT loss,
the KL reference, save / load_weights)."""

from __future__ import annotations

import os
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from cropvlm.box import Box  # noqa: E402
from cropvlm.policies.base import CropRequest, Proposal  # noqa: E402
from cropvlm.templates import FieldSpec  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import tiny_models  # noqa: E402

pytestmark = pytest.mark.usefixtures("offline")

TARGET = "[10, 20, 60, 80]."


@pytest.fixture(scope="module")
def smol(tmp_path_factory, offline):
    return tiny_models.build_idefics3(tmp_path_factory.mktemp("smol"))


@pytest.fixture(scope="module")
def qwen(tmp_path_factory, offline):
    return tiny_models.build_qwen2_vl(tmp_path_factory.mktemp("qwen"))


def pages():
    first = Image.new("RGB", (60, 90), "white")
    first.paste((0, 0, 0), (10, 10, 30, 20))
    return first, Image.new("RGB", (90, 50), (240, 240, 200))


def crop_requests():
    a, b = pages()
    return [CropRequest(a, "What is the TOTAL?", "total"), CropRequest(b, "What is the date?", "date"),
            CropRequest(a, "Who is the vendor?", "vendor")]


@pytest.fixture(scope="module")
def trained_policy(smol):
    """A tiny policy overfit (full fine-tune, teacher forced) to always answer TARGET."""
    from cropvlm.hf import HfPolicy

    policy = HfPolicy(str(smol), trainable=True, max_new_tokens=20)
    tokenizer = policy.processor.tokenizer
    target = tokenizer(TARGET, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    requests = crop_requests()
    optimizer = torch.optim.Adam([p for p in policy.model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(60):
        token_lp, mask = policy.logprobs(requests, [target] * len(requests))
        loss = -(token_lp.sum() / mask.sum())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if float(loss.detach()) < 0.01:
            break
    return policy


@pytest.mark.parametrize("family", ["idefics3", "qwen2_vl"])
def test_greedy_proposals_fall_back_to_the_full_page_and_are_counted(smol, qwen, family):
    from cropvlm.hf import HfPolicy

    policy = HfPolicy(str(smol if family == "idefics3" else qwen))
    proposals = policy.propose(crop_requests())
    assert len(proposals) == 3 and all(isinstance(p, Proposal) for p in proposals)
    invalid = [p for p in proposals if not p.valid]
    assert all(p.box is None for p in invalid)  # full page, never a corner
    assert policy.invalid_count == len(invalid) and policy.proposed_count == 3
    assert policy.propose(crop_requests()) == proposals  # greedy: deterministic
    assert policy.invalid_count == 2 * len(invalid)
    assert policy.version.startswith("hf:") and "+lora" not in policy.version


def test_policy_prompt_is_the_papers():
    from cropvlm.hf import prompts

    assert prompts.policy_text("What is the TOTAL?") == (
        "What is the TOTAL?\nOutline the region in the image that would help answer this question."
    )


def test_a_trained_policy_proposes_valid_boxes_batched_and_alone(trained_policy):
    proposals = trained_policy.propose(crop_requests())
    assert [p.text for p in proposals] == [TARGET] * 3
    assert all(p.valid and p.box == Box(10, 20, 60, 80) for p in proposals)
    alone = [trained_policy.propose([r])[0] for r in crop_requests()]
    assert alone == proposals


def test_sampling_returns_groups_with_differentiable_log_probs(smol):
    from cropvlm.hf import HfPolicy

    policy = HfPolicy(str(smol), trainable=True, max_new_tokens=12)
    torch.manual_seed(0)
    samples = policy.sample(crop_requests()[:2], num_samples=3, temperature=0.8)
    assert samples.group == [0, 0, 0, 1, 1, 1]
    assert len(samples.texts) == len(samples.proposals) == 6
    n, width = samples.completion_ids.shape
    assert n == 6 and samples.completion_mask.shape == (6, width) and samples.token_logprobs.shape == (6, width)
    assert samples.logprobs.shape == (6,) and samples.logprobs.requires_grad
    assert bool((samples.logprobs < 0).all())
    # the mask stops at each row's stop token; nothing past it counts
    assert bool((samples.token_logprobs[~samples.completion_mask] == 0).all())
    eos = policy.processor.tokenizer.eos_token_id
    for row in range(n):
        length = int(samples.completion_mask[row].sum())
        ids = samples.completion_ids[row, :length].tolist()
        assert eos not in ids[:-1]
    # GRPO-style loss backpropagates into the weights
    advantages = torch.randn(6)
    loss = -(advantages * samples.logprobs).mean()
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.model.parameters())
    # re-scoring the same completions (e.g. the reference model for KL) gives the same numbers
    again, mask = policy.logprobs([crop_requests()[g] for g in samples.group],
                                  samples.completion_ids, samples.completion_mask, temperature=0.8, grad=False)
    assert torch.equal(mask, samples.completion_mask)
    assert torch.allclose(again, samples.token_logprobs.detach(), atol=1e-4)


def test_sampling_never_emits_special_tokens_but_the_stop_token(smol):
    from cropvlm.hf import HfPolicy

    policy = HfPolicy(str(smol), trainable=True, max_new_tokens=20)
    tokenizer = policy.processor.tokenizer
    specials = set(tokenizer.all_special_ids) | {policy.processor.image_token_id}
    stop = tokenizer.convert_tokens_to_ids("<end_of_utterance>")
    torch.manual_seed(1)
    samples = policy.sample(crop_requests(), num_samples=4, temperature=1.5)  # a flat distribution
    drawn = set(samples.completion_ids[samples.completion_mask].tolist())
    assert not (drawn & (specials - {stop}))  # an <image> would break the re-scoring
    assert policy.model.generation_config.suppress_tokens is None  # only while sampling


def _make_adapter(base, folder, seed):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_pretrained(base)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder)
    return folder


def test_lora_adapter_loads_changes_outputs_and_version(smol, tmp_path):
    from cropvlm.hf import HfPolicy

    first = _make_adapter(str(smol), tmp_path / "lora-a", seed=1)
    second = _make_adapter(str(smol), tmp_path / "lora-b", seed=2)
    base = HfPolicy(str(smol))
    tuned = HfPolicy(str(smol), adapter=str(first))
    other = HfPolicy(str(smol), adapter=str(second))
    assert tuned.version.startswith(base.version + "+lora:lora-a#")
    assert other.version.split("#")[-1] != tuned.version.split("#")[-1]  # same shapes, other weights
    assert tuned.model is not base.model  # peft never wraps the shared base model
    completion = [[5, 6, 7]]
    request = crop_requests()[:1]
    lp_base = base.logprobs(request, completion, grad=False)[0]
    lp_tuned = tuned.logprobs(request, completion, grad=False)[0]
    assert not torch.allclose(lp_base, lp_tuned)
    with tuned.model.disable_adapter():  # the reference model for the KL term
        assert torch.allclose(tuned.logprobs(request, completion, grad=False)[0], lp_base, atol=1e-5)
    assert len(tuned.propose(crop_requests())) == 3

    trainable = HfPolicy(str(smol), adapter=str(first), trainable=True)
    names = [n for n, p in trainable.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    samples = trainable.sample(request, num_samples=2, temperature=1.0, max_new_tokens=6)
    samples.logprobs.sum().backward()
    assert all(p.grad is not None for n, p in trainable.model.named_parameters() if p.requires_grad)


def test_crop_then_answer_end_to_end_with_hf_policy_and_reader(trained_policy, smol):
    from cropvlm.hf import HfPolicy, HfReader
    from cropvlm.pipeline import PageRef, crop_then_answer
    from cropvlm.render import render_document
    from cropvlm.synthetic import generate_document

    pages = []
    for seed in (1, 2):
        doc = generate_document("receipt", seed, format="png", dpi=50)
        for number, image in enumerate(render_document(doc.data).pages, start=1):
            pages.append(PageRef(doc.name, number, image))
    fields = [FieldSpec("total", "What is the total amount?", "amount"), FieldSpec("date", "What is the date?", "date")]
    reader = HfReader(str(smol), max_new_tokens=6)
    batch = crop_then_answer(pages, fields, trained_policy, reader)
    assert len(batch.results) == 2 * len(pages)
    for result in batch.results:
        assert result.proposal.valid and result.proposal.box == Box(10, 20, 60, 80)
        assert result.crop is not None and result.crop_pixels is not None
        assert result.answer.source == "vlm" and 0 <= result.answer.confidence <= 1
    assert sum(r.is_best for r in batch.results) == 2 * 2  # one per document and field

    untrained = HfPolicy(str(smol))
    batch = crop_then_answer(pages[:1], fields, untrained, reader)
    assert len(batch.results) == 2
    for result in batch.results:
        if not result.proposal.valid:
            assert result.crop is None  # the reader saw the whole page
    assert untrained.invalid_count == sum(not r.proposal.valid for r in batch.results)


# --- the trainable-policy protocol ---------------------------------------------------------
BOXES = [Box(10, 20, 60, 80), Box(0, 0, 50, 50), Box(5, 5, 95, 30)]


def _lora_policy(smol, tmp_path, seed=1):
    from cropvlm.hf import HfPolicy

    adapter = _make_adapter(str(smol), tmp_path / f"lora-{seed}", seed=seed)  # random B: differs from the base
    return HfPolicy(str(smol), adapter=str(adapter), trainable=True), adapter


def _targets(policy):
    return [policy.completion_ids(b.format()) for b in BOXES]


def test_sft_target_is_the_assistant_turn_text_and_its_stop_token(smol):
    from cropvlm.hf import HfPolicy

    policy = HfPolicy(str(smol))
    ids = policy.completion_ids("[10, 20, 60, 80].")
    tokenizer = policy.processor.tokenizer
    assert ids[-1] == tokenizer.convert_tokens_to_ids("<end_of_utterance>")  # SmolVLM's end of turn
    assert tokenizer.decode(ids[:-1]) == " [10, 20, 60, 80]."  # "Assistant: [...]" as the template writes it


def test_sft_loss_decreases_and_trains_the_lora_weights_only(smol, tmp_path):
    policy, _ = _lora_policy(smol, tmp_path)
    params = policy.parameters()
    names = {id(p): n for n, p in policy.model.named_parameters()}
    assert params and all("lora_" in names[id(p)] for p in params)
    optimizer = torch.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(4):
        loss = policy.sft_loss(crop_requests(), BOXES)
        optimizer.zero_grad()
        loss.backward()
        if not losses:
            grads = {n: p.grad for n, p in policy.model.named_parameters()}
            assert all(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "lora_" in n)
            assert all(g is None for n, g in grads.items() if "lora_" not in n)
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0] - 0.5
    # the loss is the per-token NLL of exactly these targets
    token_lp, mask = policy.logprobs(crop_requests(), _targets(policy), grad=False)
    assert float(policy.sft_loss(crop_requests(), BOXES).detach()) == pytest.approx(float(-token_lp.sum() / mask.sum()))
    with pytest.raises(ValueError, match="boxes"):
        policy.sft_loss(crop_requests(), BOXES[:2])


def test_the_reference_of_a_lora_policy_is_the_base_model_and_stays_fixed(smol, tmp_path):
    from cropvlm.hf import HfPolicy

    policy, _ = _lora_policy(smol, tmp_path)
    reference = policy.frozen_copy()
    base = HfPolicy(str(smol))
    requests, targets = crop_requests(), _targets(policy)
    flags = [p.requires_grad for p in policy.model.parameters()]
    lp_base = base.logprobs(requests, targets, grad=False)[0]
    lp_ref = reference.logprobs(requests, targets)[0]
    assert torch.allclose(lp_ref, lp_base, atol=1e-5) and not lp_ref.requires_grad
    assert not torch.allclose(policy.logprobs(requests, targets, grad=False)[0], lp_base, atol=1e-3)
    assert [p.requires_grad for p in policy.model.parameters()] == flags  # the switch is undone
    assert reference.parameters() == [] and reference.version == base.version

    # a policy step between sampling and backward (as in grpo_step) moves the policy, not the reference
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.1)
    before = policy.logprobs(requests, targets, grad=True)[0]
    assert torch.allclose(reference.logprobs(requests, targets)[0], lp_ref)
    (-before.sum()).backward()
    optimizer.step()
    assert not torch.allclose(policy.logprobs(requests, targets, grad=False)[0], before.detach(), atol=1e-4)
    assert torch.allclose(reference.logprobs(requests, targets)[0], lp_ref)

    # the training loop makes the saved SFT policy the reference: a second, frozen adapter
    sft = policy.save(tmp_path / "sft")
    lp_sft = policy.logprobs(requests, targets, grad=False)[0]
    reference.load_weights(sft)
    assert "+lora:sft#" in reference.version
    optimizer.zero_grad()
    (-policy.logprobs(requests, targets, grad=True)[0].sum()).backward()
    optimizer.step()
    assert torch.allclose(reference.logprobs(requests, targets)[0], lp_sft, atol=1e-5)
    assert not torch.allclose(policy.logprobs(requests, targets, grad=False)[0], lp_sft, atol=1e-4)
    assert len(policy.parameters()) == sum(flags)  # the reference adapter is frozen, not trained
    saved = policy.save(tmp_path / "after")
    assert not (saved / "reference").exists()  # only the trained adapter is saved


def test_the_reference_of_a_full_model_is_a_frozen_deep_copy(smol):
    from cropvlm.hf import HfPolicy

    policy = HfPolicy(str(smol), trainable=True)
    reference = policy.frozen_copy()
    assert reference.model is not policy.model and reference.parameters() == []
    assert reference.processor is policy.processor and not reference.model.training
    requests, targets = crop_requests()[:2], _targets(policy)[:2]
    lp = reference.logprobs(requests, targets, grad=False)[0]
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.05)
    optimizer.zero_grad()
    policy.sft_loss(requests, BOXES[:2]).backward()
    optimizer.step()
    assert torch.equal(reference.logprobs(requests, targets, grad=False)[0], lp)
    assert not torch.allclose(policy.logprobs(requests, targets, grad=False)[0], lp, atol=1e-4)


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_save_and_load_weights_round_trip(smol, tmp_path, lora):
    from cropvlm.hf import HfPolicy

    if lora:
        policy, adapter = _lora_policy(smol, tmp_path)
        fresh = HfPolicy(str(smol), adapter=str(adapter), trainable=True)
    else:
        policy, fresh = HfPolicy(str(smol), trainable=True), HfPolicy(str(smol), trainable=True)
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.05)
    policy.sft_loss(crop_requests(), BOXES).backward()
    optimizer.step()
    folder = policy.save(tmp_path / "checkpoint", onnx=False)
    assert (folder / ("adapter_model.safetensors" if lora else "model.safetensors")).is_file()
    requests, targets = crop_requests(), _targets(policy)
    expected = policy.logprobs(requests, targets, grad=False)[0]
    assert not torch.allclose(fresh.logprobs(requests, targets, grad=False)[0], expected, atol=1e-4)
    params = fresh.parameters()
    fresh.load_weights(folder)
    assert torch.equal(fresh.logprobs(requests, targets, grad=False)[0], expected)
    assert [id(p) for p in fresh.parameters()] == [id(p) for p in params]  # in place: an optimizer stays valid
    if lora:
        assert fresh.version == fresh.base_version + folder_suffix(folder)
        assert HfPolicy(str(smol), adapter=str(folder)).version == fresh.version  # as if loaded from there
    else:
        assert fresh.version.startswith("hf:checkpoint@default#")
        assert HfPolicy(str(folder)).version == fresh.version


def folder_suffix(folder):
    from cropvlm.hf import loading

    return f"+lora:{folder.name}#{loading.fingerprint(str(folder), content=True, files=('adapter_config.json',))}"


@pytest.mark.gpu
def test_cuda_bf16_policy_samples_with_grad(smol):
    from cropvlm.hf import HfPolicy

    policy = HfPolicy(str(smol), device="cuda", trainable=True)
    assert policy.model.dtype == torch.bfloat16
    samples = policy.sample(crop_requests(), num_samples=2, temperature=0.8)
    samples.logprobs.float().sum().backward()
    assert len(policy.propose(crop_requests())) == 3
