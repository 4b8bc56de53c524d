"""Spec strings pick the backend; versions carry what identifies it."""

import pytest

from cropvlm.errors import CropVLMError, SpecError
from cropvlm.readers.openai_compat import reader_from_spec
from cropvlm.specs import build_reader


def test_the_spec_builds_an_openai_reader(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-spec-test")
    reader = build_reader("openai:gpt-4.1-nano")
    assert reader.version == "openai:gpt-4.1-nano@1024"
    assert "sk-spec-test" not in repr(reader)


def test_rapidocr_sessions_do_not_cache_a_memory_plan_per_input_shape():
    # With the cache on, RSS grew ~300 MB over a 500-document batch (benchmarks/extract_throughput.py).
    from cropvlm.readers.ocr_engines import _rapidocr

    engine = _rapidocr()
    sessions = [engine.text_det.infer.session, engine.text_rec.session.session]
    assert all(not s.get_session_options().enable_mem_pattern for s in sessions)


@pytest.mark.parametrize("spec", ["ocr:rapidocr@big", "nope:x", "ocr:easyocr@768"])
def test_bad_reader_specs_raise_with_the_known_forms(spec):
    with pytest.raises(CropVLMError) as error:
        build_reader(spec)
    assert "ocr" in str(error.value) or "engine" in str(error.value)


def test_ocr_reader_versions_name_engine_and_budget():
    assert build_reader("ocr:rapidocr@768").version == "ocr:rapidocr@768"
    assert build_reader("ocr:tesseract@full").version == "ocr:tesseract@full"


def test_reader_from_spec(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert reader_from_spec("gpt-4.1-nano").version == "openai:gpt-4.1-nano@1024"
    ollama = reader_from_spec("qwen2.5vl:7b@768", max_concurrency=2)
    assert ollama.version == "openai:qwen2.5vl:7b@768"
    assert ollama.config.base_url == "http://localhost:11434/v1" and ollama.config.max_concurrency == 2
    assert reader_from_spec("gpt-4.1-nano@full").config.image_max_side is None
    for bad in ["", "@768", "gpt-4.1-nano@big", "gpt-4.1-nano@8"]:
        with pytest.raises(SpecError):
            reader_from_spec(bad)
