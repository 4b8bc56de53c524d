"""HfReader on tiny random-weight checkpoints of each family, loaded like real ones (offline)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from cropvlm.readers.base import ReadRequest  # noqa: E402
from cropvlm.templates import FieldSpec  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import tiny_models  # noqa: E402

pytestmark = pytest.mark.usefixtures("offline")

FAMILIES = ("idefics3", "qwen2_vl", "llava")
SPECS = (
    FieldSpec("total", "What is the TOTAL amount?", "amount"),
    FieldSpec("date", "What is the Invoice Date?", "date"),
    FieldSpec("vendor", "Who issued this receipt?"),
)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, offline):
    return {family: tiny_models.BUILDERS[family](tmp_path_factory.mktemp(family)) for family in FAMILIES}


def images():
    page = Image.new("RGB", (60, 90), "white")
    page.paste((200, 30, 30), (5, 5, 40, 30))
    other = Image.new("RGB", (120, 70), (220, 230, 255))
    crop = page.crop((5, 5, 40, 30))
    return page, other, crop


def requests():
    page, other, crop = images()
    return [ReadRequest(page, crop, SPECS[0]), ReadRequest(other, None, SPECS[1]), ReadRequest(page, None, SPECS[2])]


@pytest.mark.parametrize("family", FAMILIES)
def test_answers_a_batch_with_and_without_crops(checkpoints, family):
    from cropvlm.hf import HfReader

    reader = HfReader(str(checkpoints[family]), max_new_tokens=8)
    answers = reader.answer(requests())
    assert len(answers) == 3
    for answer, request in zip(answers, requests()):
        assert isinstance(answer.text, str) and answer.text == answer.text.strip()
        assert 0.0 <= answer.confidence <= 1.0
        assert answer.source == "vlm"
        if answer.text:
            from cropvlm.normalize import normalize_value

            assert answer.value == normalize_value(answer.text, request.spec.type)
    assert reader.version.startswith(f"hf:{checkpoints[family].name}@default#")


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_greedy_generation_equals_one_request_at_a_time(checkpoints, family):
    from cropvlm.hf import HfReader

    reader = HfReader(str(checkpoints[family]), max_new_tokens=8)
    batched = reader.answer(requests())
    alone = [reader.answer([r])[0] for r in requests()]
    assert [a.text for a in batched] == [a.text for a in alone]
    assert [a.confidence for a in batched] == pytest.approx([a.confidence for a in alone], abs=1e-4)


def _manual_score(reader, page, crop, question, answer):
    """Unbatched, full-logits reference: prompt + answer tokens, sum over the answer only."""
    from cropvlm.hf import prompts

    processor, model = reader.processor, reader.model
    row = [page] if crop is None else [page, crop]
    text = prompts.render(processor, prompts.reader_text(question), len(row))
    bos = processor.tokenizer.bos_token
    image_arg = [row] if reader._loaded.family == "idefics3" else row
    inputs = processor(text=[text], images=image_arg, return_tensors="pt",
                       add_special_tokens=not (bos and text.startswith(bos)))
    answer_ids = processor.tokenizer(answer, add_special_tokens=False)["input_ids"]
    n = inputs["input_ids"].shape[1]
    extra = torch.tensor([answer_ids])
    inputs["input_ids"] = torch.cat([inputs["input_ids"], extra], 1)
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if "mm_token_type_ids" in inputs:
        inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(extra)], 1)
    with torch.no_grad():
        logits = model(**inputs).logits[0].float()
    logprobs = torch.log_softmax(logits, -1)
    return sum(float(logprobs[n - 1 + k, tok]) for k, tok in enumerate(answer_ids))


@pytest.mark.parametrize("family", FAMILIES)
def test_score_is_the_exact_teacher_forced_answer_log_likelihood(checkpoints, family):
    from cropvlm.hf import HfReader

    reader = HfReader(str(checkpoints[family]))
    page, other, crop = images()
    pages, crops = [page, other, page], [crop, None, None]
    questions = ["What is the TOTAL amount?", "A much longer question, with more words in it?", "Q?"]
    answers = ["12.50", "a considerably longer answer with many tokens", "Z"]
    batched = reader.score(pages, crops, questions, answers)
    manual = [_manual_score(reader, *args) for args in zip(pages, crops, questions, answers)]
    assert batched == pytest.approx(manual, rel=1e-4, abs=1e-3)
    # padding must not change a row: alone, reordered, or with another batch size
    alone = [reader.score([p], [c], [q], [a])[0] for p, c, q, a in zip(pages, crops, questions, answers)]
    assert batched == pytest.approx(alone, rel=1e-4, abs=1e-3)
    reversed_ = reader.score(pages[::-1], crops[::-1], questions[::-1], answers[::-1])[::-1]
    assert batched == pytest.approx(reversed_, rel=1e-4, abs=1e-3)
    assert all(s < 0 for s in batched)
    # only the answer's tokens count: the mean is the sum over exactly that many tokens
    counts = [len(reader.processor.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers]
    means = reader.score(pages, crops, questions, answers, reduction="mean")
    assert means == pytest.approx([s / c for s, c in zip(batched, counts)], rel=1e-4)
    with_eos = reader.score(pages, crops, questions, answers, include_eos=True)
    assert all(e < s for e, s in zip(with_eos, batched))


def test_score_uses_the_crop_and_questions_keep_their_case(checkpoints):
    from cropvlm.hf import HfReader

    reader = HfReader(str(checkpoints["idefics3"]))
    page, other, crop = images()
    with_crop = reader.score([page], [crop], ["What is the TOTAL?"], ["12"])[0]
    without = reader.score([page], [None], ["What is the TOTAL?"], ["12"])[0]
    lowered = reader.score([page], [crop], ["What is the total?"], ["12"])[0]
    assert with_crop != pytest.approx(without) and with_crop != pytest.approx(lowered)
    from cropvlm.hf import prompts

    text = prompts.render(reader.processor, prompts.reader_text("What is the TOTAL?"), 2)
    assert "What is the TOTAL?\nGive a very brief answer." in text
    assert text.index("<image>") < text.index("What")  # images first


def test_resolution_setting_per_family(checkpoints):
    from cropvlm.hf import HfReader

    default = HfReader(str(checkpoints["idefics3"]))
    bigger = HfReader(str(checkpoints["idefics3"]), resolution=64)  # 2 x 2 tiles + global view
    assert bigger.processor.image_processor.size["longest_edge"] == 64
    assert bigger.version != default.version and "@64#" in bigger.version
    page, _, _ = images()
    assert len(bigger.answer([ReadRequest(page, None, SPECS[0])])) == 1

    qwen = HfReader(str(checkpoints["qwen2_vl"]), resolution=16)
    assert qwen.processor.image_processor.size["longest_edge"] == 256
    assert len(qwen.answer([ReadRequest(page, None, SPECS[0])])) == 1

    assert HfReader(str(checkpoints["llava"]), resolution=16).version.endswith(
        HfReader(str(checkpoints["llava"])).version.split("#")[1]
    )
    with pytest.raises(ValueError, match="fixed by its vision tower"):
        HfReader(str(checkpoints["llava"]), resolution=336)


def test_budget_and_input_size_are_what_the_processor_does(checkpoints):
    """The evaluation counts pixels with these: checked against the processors' own output."""
    from cropvlm.hf import HfReader

    page = Image.new("RGB", (60, 90), "white")
    idefics = {res: HfReader(str(checkpoints["idefics3"]), resolution=res) for res in (None, 16, 64)}
    assert {res: r.budget for res, r in idefics.items()} == {None: 32, 16: 16, 64: 64}  # longest_edge
    assert idefics[16].input_size((60, 90)) == (11, 16) and idefics[64].input_size((60, 90)) == (43, 64)
    assert {res: r.below_default for res, r in idefics.items()} == {None: False, 16: True, 64: False}

    for res, expected in ((None, (24, 32)), (16, (8, 16))):  # a pixel cap of 32^2 (tiny default) or 16^2
        qwen = HfReader(str(checkpoints["qwen2_vl"]), resolution=res)
        ip = qwen.processor.image_processor
        _, rows, cols = ip(images=[page], return_tensors="pt")["image_grid_thw"][0].tolist()
        assert qwen.input_size((60, 90)) == (cols * ip.patch_size, rows * ip.patch_size) == expected
        assert qwen.budget is None and qwen.below_default == (res is not None)

    llava = HfReader(str(checkpoints["llava"]), resolution=16)
    assert llava.processor.image_processor(images=[page], return_tensors="pt")["pixel_values"].shape[-2:] == (16, 16)
    assert (llava.budget, llava.input_size((60, 90)), llava.below_default) == (16, (16, 16), False)


def test_model_is_loaded_once_per_worker(checkpoints):
    from cropvlm.hf import HfReader

    first, second = HfReader(str(checkpoints["idefics3"])), HfReader(str(checkpoints["idefics3"]), batch_size=2)
    assert first.model is second.model
    assert first.model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_cropvlm_imports_no_torch_until_an_hf_backend_is_used():
    code = (
        "import sys, cropvlm.hf, cropvlm.pipeline, cropvlm.specs, cropvlm.hf.prompts, cropvlm.hf.loading, cropvlm.hf.specs\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'prefect', 'sqlalchemy', 'boto3') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.gpu
def test_cuda_bf16_reader_matches_its_own_batching(checkpoints):
    from cropvlm.hf import HfReader

    reader = HfReader(str(checkpoints["idefics3"]), device="cuda", max_new_tokens=8)
    assert reader.model.dtype == torch.bfloat16
    answers = reader.answer(requests())
    assert len(answers) == 3 and all(0 <= a.confidence <= 1 for a in answers)
    page, _, crop = images()
    assert reader.score([page], [crop], ["Q?"], ["12"])[0] < 0


def test_hf_specs_parse_and_build(checkpoints):
    from cropvlm.errors import SpecError
    from cropvlm.hf import specs

    assert specs.parse("hf:HuggingFaceTB/SmolVLM-256M-Instruct@512?batch_size=64&attn=sdpa", allow_adapter=False) == (
        "HuggingFaceTB/SmolVLM-256M-Instruct", {"resolution": 512, "batch_size": 64, "attn_implementation": "sdpa"}
    )
    assert specs.parse("hf:/m/a@b@default", allow_adapter=False) == ("/m/a@b", {})
    assert specs.parse("hf:/m/p?adapter=/runs/v7", allow_adapter=True) == ("/m/p", {"adapter": "/runs/v7"})
    assert specs.parse("hf:/m/p?decode=static", allow_adapter=True) == ("/m/p", {"decode": "static"})
    for bad in ("hf:", "hf:/m@x", "hf:/m?adapter=/a", "hf:/m?batch_size=two", "ocr:rapidocr", "hf:/m?decode=fast"):
        with pytest.raises(SpecError):
            specs.parse(bad, allow_adapter=False)
    reader = specs.build_reader(f"hf:{checkpoints['idefics3']}@32?max_new_tokens=4&batch_size=2")
    assert reader.version.startswith(f"hf:{checkpoints['idefics3'].name}@32#")
    assert reader.max_new_tokens == 4 and reader.batch_size == 2 and reader.decode == "dynamic"
    assert specs.build_policy(f"hf:{checkpoints['idefics3']}@32?decode=static").decode == "static"


def test_version_tells_checkpoints_of_one_architecture_apart(tmp_path):
    from cropvlm.hf import loading

    first = tiny_models.build_idefics3(tmp_path / "a", seed=1)
    second = tiny_models.build_idefics3(tmp_path / "b", seed=2)
    assert loading.fingerprint(str(first)) != loading.fingerprint(str(second))
    assert loading.fingerprint(str(first)) == loading.fingerprint(str(first))
