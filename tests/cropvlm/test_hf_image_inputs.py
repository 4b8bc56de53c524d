"""Pages shrunk once per processor call to the processor's own resize target: the model's
inputs are exactly those of the processor alone (PIL image processors), each page is resized
once however many fields ask about it, and the image processor's device is chosen right.
For an image processor on the GPU: each page becomes a tensor on the device once, crops are
slices of it, and the processor's output is that of PIL images (torchvision, where it imports)."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from cropvlm.hf import loading, prompts, scoring  # noqa: E402
from cropvlm.hf.image_inputs import device_images, processor_device, processor_size, shrink_once  # noqa: E402
from cropvlm.readers.base import ReadRequest  # noqa: E402
from cropvlm.templates import FieldSpec  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import tiny_models  # noqa: E402

pytestmark = pytest.mark.usefixtures("offline")


def page(width: int, height: int, seed: int = 0) -> Image.Image:
    """Fine detail everywhere, so any difference in resampling shows in the pixels."""
    return Image.effect_noise((width, height), 60 + seed).convert("RGB")


@pytest.fixture(scope="module")
def idefics3_path(tmp_path_factory, offline):
    # longest_edge 64: a 301 x 419 page shrinks to an odd-width target that the processor
    # rounds up to even (the rule copied from nowhere: transformers' own helper is used).
    return str(tiny_models.build_idefics3(tmp_path_factory.mktemp("i3"), image_size=64))


@pytest.fixture(scope="module")
def idefics3(idefics3_path):
    return loading.load(idefics3_path, cache=False)


@pytest.fixture(scope="module")
def qwen2_vl(tmp_path_factory, offline):
    return loading.load(str(tiny_models.build_qwen2_vl(tmp_path_factory.mktemp("q2"))), cache=False)


@pytest.fixture(scope="module")
def llava(tmp_path_factory, offline):
    return loading.load(str(tiny_models.build_llava(tmp_path_factory.mktemp("llava"))), cache=False)


def encoded(loaded, rows, shrink: bool):
    loaded.shrink_images = shrink
    try:
        texts = [prompts.render(loaded.processor, prompts.reader_text("What is the total?"), len(r)) for r in rows]
        return scoring.encode(loaded, texts, rows, padding_side="left")
    finally:
        loaded.shrink_images = True


@pytest.mark.parametrize("family", ["idefics3", "qwen2_vl"])
def test_shrinking_first_gives_the_processor_s_own_pixels(family, request):
    loaded = request.getfixturevalue(family)
    if loaded.processor.image_processor.backend != "pil":  # transformers loads torchvision's where it imports
        pytest.skip("pixel-exact for PIL image processors only (torchvision resizes with its own filter)")
    first, second = page(301, 419), page(640, 452, seed=1)
    crop = first.crop((10, 10, 60, 40))  # smaller than the target: zoomed by the processor as before
    rows = [[first, crop], [first], [second, second.crop((0, 0, 30, 30))]]
    plain, shrunk = encoded(loaded, rows, shrink=False), encoded(loaded, rows, shrink=True)
    assert set(plain) == set(shrunk)
    for key in plain:
        assert torch.equal(plain[key], shrunk[key]), key
    target = processor_size(loaded.family, loaded.processor.image_processor, first.size)
    assert target is not None and max(target) < max(first.size)


def test_each_distinct_page_is_resized_once_and_crops_are_never_enlarged(idefics3):
    first, second = page(301, 419), page(419, 301, seed=2)
    small = first.crop((0, 0, 40, 30))
    rows = shrink_once(idefics3, [[first, small], [first], [second], [first, small]])
    assert rows[0][0] is rows[1][0] is rows[3][0]  # one resize for the page's three fields
    assert rows[0][0] is not rows[2][0]
    assert rows[0][1] is small  # already RGB and smaller than the target: untouched
    ip = idefics3.processor.image_processor
    assert rows[0][0].size == processor_size("idefics3", ip, first.size) == (46, 64)
    assert rows[2][0].size == (64, 46)
    grey = first.convert("L")
    assert shrink_once(idefics3, [[grey]])[0][0].mode == "RGB"


def test_nothing_is_shrunk_on_the_cpu_for_an_image_processor_on_the_gpu(idefics3):
    big = page(301, 419)
    on_gpu = SimpleNamespace(**{**vars(idefics3), "device": torch.device("cuda:0")})
    on_gpu.processor = SimpleNamespace(image_processor=SimpleNamespace(**{
        **vars(idefics3.processor.image_processor), "backend": "torchvision"}))
    assert shrink_once(on_gpu, [[big]])[0][0] is big  # resizing there is free
    on_gpu.image_device = "cpu"
    assert shrink_once(on_gpu, [[big]])[0][0].size == (46, 64)


def test_families_without_a_known_resize_are_left_alone(llava):
    big = page(300, 200)
    assert processor_size("llava", llava.processor.image_processor, big.size) is None
    assert shrink_once(llava, [[big]])[0][0] is big


def test_the_image_processor_runs_on_the_model_s_gpu_only_when_it_can():
    def loaded(backend, device, image_device="auto"):
        processor = SimpleNamespace(image_processor=SimpleNamespace(backend=backend))
        return SimpleNamespace(processor=processor, device=torch.device(device), image_device=image_device)

    assert processor_device(loaded("torchvision", "cuda:0")) == torch.device("cuda:0")
    assert processor_device(loaded("torchvision", "cuda:0", image_device="cpu")) is None
    assert processor_device(loaded("pil", "cuda:0")) is None  # PIL processors run on the CPU only
    assert processor_device(loaded("torchvision", "cpu")) is None


def as_array(tensor):
    return tensor.permute(1, 2, 0).cpu().numpy()


def test_each_page_becomes_one_tensor_and_its_crops_are_slices_of_it():
    import numpy as np

    first, second = page(301, 419), page(64, 48, seed=3).convert("L")
    box = (20, 30, 120, 90)
    crop, other_crop = first.crop(box), first.crop((0, 0, 50, 40))
    tiny = first.crop((5, 5, 25, 15))  # too small for the model: enlarged on the CPU as before
    rows = device_images([[first, crop], [first, other_crop], [second], [first, tiny]], torch.device("cpu"),
                         regions={id(crop): (first, box), id(other_crop): (first, (0, 0, 60, 40)),
                                  id(tiny): (first, (5, 5, 25, 15))})
    page_tensor = rows[0][0]
    assert rows[1][0] is page_tensor and rows[3][0] is page_tensor  # converted once for its fields
    assert page_tensor.dtype == torch.uint8 and page_tensor.shape == (3, 419, 301)
    assert np.array_equal(as_array(page_tensor), np.array(first))
    # the crop: the same pixels as the PIL crop, and no copy of its own (it shares the page's memory)
    assert np.array_equal(as_array(rows[0][1]), np.array(crop))
    assert rows[0][1].untyped_storage().data_ptr() == page_tensor.untyped_storage().data_ptr()
    # a region that does not match the crop's size is not trusted: the crop is converted itself
    assert np.array_equal(as_array(rows[1][1]), np.array(other_crop))
    assert rows[1][1].untyped_storage().data_ptr() != page_tensor.untyped_storage().data_ptr()
    assert rows[2][0].shape == (3, 48, 64)  # greyscale made RGB
    assert rows[3][1].shape[1:] == (28, 56)  # enlarged to the smallest side the models take


def torchvision_twin(loaded):
    """`loaded` with transformers' torchvision image processor instead of the saved PIL one,
    running on the CPU as it would on a GPU (device= in the processor call)."""
    import transformers

    pil = loaded.processor.image_processor
    cls = getattr(transformers, type(pil).__name__.removesuffix("Pil"))
    settings = {k: v for k, v in pil.to_dict().items()
                if k not in ("image_processor_type", "processor_class", "_processor_class", "backend")}
    processor = type(loaded.processor)(cls(**settings), loaded.processor.tokenizer,
                                       chat_template=loaded.processor.chat_template,
                                       **({"image_seq_len": loaded.processor.image_seq_len}
                                          if loaded.family == "idefics3" else {}))
    return SimpleNamespace(**{**vars(loaded), "processor": processor})


@pytest.mark.parametrize("family", ["idefics3", "qwen2_vl"])
def test_tensors_on_the_device_give_the_processor_s_own_inputs(family, request, monkeypatch):
    pytest.importorskip("torchvision")
    twin = torchvision_twin(request.getfixturevalue(family))
    first, second = page(301, 419), page(640, 452, seed=1)
    box = (10, 10, 90, 70)
    crop = first.crop(box)
    rows = [[first, crop], [first], [second, second.crop((0, 0, 30, 30))]]
    texts = [prompts.render(twin.processor, prompts.reader_text("What is the total?"), len(r)) for r in rows]
    monkeypatch.setattr(scoring, "processor_device", lambda loaded: torch.device("cpu"))  # "the GPU"
    twin.image_tensors, twin.shrink_images = False, False  # the processor's own conversion of PIL images
    from_pil = scoring.encode(twin, texts, rows, padding_side="left")
    twin.image_tensors = True
    from_tensors = scoring.encode(twin, texts, rows, padding_side="left", regions={id(crop): (first, box)})
    assert set(from_pil) == set(from_tensors)
    for key in from_pil:
        assert torch.equal(from_pil[key], from_tensors[key]), key


def test_the_reader_hands_its_crops_regions_to_the_encoder(idefics3_path, monkeypatch):
    from cropvlm.hf import HfReader

    seen = []
    encode = scoring.encode_ahead
    monkeypatch.setattr(scoring, "encode_ahead", lambda *a, **k: seen.append(k.get("regions")) or encode(*a, **k))
    reader = HfReader(idefics3_path, max_new_tokens=2)
    first = page(301, 419)
    box = (20, 30, 120, 90)
    crop = first.crop(box)
    spec = FieldSpec("total", "What is the total?", "amount")
    answers = reader.answer([ReadRequest(first, crop, spec, crop_box=box), ReadRequest(first, None, spec),
                             ReadRequest(first, first.crop(box), spec)])
    assert len(answers) == 3 and seen == [{id(crop): (first, box)}]
