"""OpenAIReader against a real local HTTP server speaking the chat-completions protocol.

Request shape, answers and normalised values, log-prob confidence, retries by the `openai`
client (429 with Retry-After, 500, timeouts, dropped connections), giving up, no retry on
400, the concurrency limit, and the API key kept out of repr, version, logs and errors.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import pickle
import socket
import threading
import time
from collections import deque

import pytest
from PIL import Image

from cropvlm.errors import ReaderError
from cropvlm.readers.base import ReadRequest
from cropvlm.readers.openai_compat import OpenAIReader, OpenAIReaderConfig
from cropvlm.readers.openai_messages import NO_LOGPROB_CONFIDENCE, resize_for_reader
from cropvlm.templates import FieldSpec

from fake_openai_server import FakeOpenAIServer, Reply

KEY = "sk-test-SECRET-0123456789abcdef"
SOON = {"retry-after-ms": "1"}  # the client's own backoff starts at 0.5 s: keeps retry tests quick
TOTAL = FieldSpec("total", "What is the total amount paid?", "amount", ("TOTAL",))
DATE = FieldSpec("date", "What is the Date of this receipt?", "date")
COMPANY = FieldSpec("company", "Which Company issued this receipt (ACME or XYZ)?", "text")
INVOICE = FieldSpec("invoice_number", "What is the invoice number?", "id")


@pytest.fixture
def server():
    with FakeOpenAIServer(api_key=KEY) as srv:
        yield srv


_OPEN: list[OpenAIReader] = []


@pytest.fixture(autouse=True)
def close_readers():
    yield
    while _OPEN:
        _OPEN.pop().close()


def track(reader: OpenAIReader) -> OpenAIReader:
    _OPEN.append(reader)
    return reader


def make_reader(server: FakeOpenAIServer, **overrides) -> OpenAIReader:
    settings = dict(model="gpt-4.1-nano", base_url=server.base_url, api_key=KEY, timeout_s=5.0)
    settings.update(overrides)
    return track(OpenAIReader(OpenAIReaderConfig(**settings)))


def page_and_crop(size=(1600, 2000)) -> tuple[Image.Image, Image.Image]:
    page = Image.new("RGB", size, "white")
    page.paste((200, 0, 0), (0, 0, size[0] // 2, size[1] // 2))  # a red quadrant, to tell apart
    crop = page.crop((size[0] // 2, size[1] // 2, size[0] // 2 + 300, size[1] // 2 + 100))
    crop.paste((0, 0, 200), (0, 0, 300, 100))  # blue
    return page, crop


def decode(url: str) -> Image.Image:
    header, _, data = url.partition(",")
    assert header in ("data:image/jpeg;base64", "data:image/png;base64")
    return Image.open(io.BytesIO(base64.b64decode(data)))


# --- request shape ------------------------------------------------------------------------


def test_request_shape_page_then_crop_and_prompt_case_kept(server):
    page, crop = page_and_crop()
    server.answers[DATE.question] = "19/10/2018"
    with make_reader(server) as reader:
        answers = reader.answer([ReadRequest(page, crop, DATE)])
    assert answers[0].value == "2018-10-19"
    [request] = server.completion_requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    body = request.body
    assert body["model"] == "gpt-4.1-nano"
    assert body["max_tokens"] == 32 and body["temperature"] == 0
    assert body["logprobs"] is True
    [message] = body["messages"]
    assert message["role"] == "user"
    kinds = [part["type"] for part in message["content"]]
    assert kinds == ["image_url", "image_url", "text"]
    assert message["content"][2]["text"] == "What is the Date of this receipt?\nGive a very brief answer."
    first, second = (decode(p["image_url"]["url"]) for p in message["content"][:2])
    assert message["content"][0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "detail" not in message["content"][0]["image_url"]
    # page first (resized so its long side is 1024, aspect kept), crop second (small: kept as is)
    assert first.size == (819, 1024)
    assert first.convert("RGB").getpixel((10, 10))[0] > 150  # the red quadrant
    assert second.size == (300, 100)
    assert second.convert("RGB").getpixel((150, 50))[2] > 150  # the blue crop


def test_no_crop_sends_only_the_page(server):
    page, _ = page_and_crop()
    with make_reader(server) as reader:
        answers = reader.answer([ReadRequest(page, None, COMPANY), ReadRequest(page, Image.new("RGB", (1, 40)), COMPANY)])
    assert [a.source for a in answers] == ["page", "page"]  # a degenerate crop counts as none
    for request in server.completion_requests:
        content = request.body["messages"][0]["content"]
        assert [p["type"] for p in content] == ["image_url", "text"]
        assert content[1]["text"] == COMPANY.question + "\nGive a very brief answer."


def test_image_options_png_detail_full_resolution_upscale_and_token_field(server):
    page, crop = page_and_crop((600, 400))
    reader = make_reader(
        server, image_format="png", detail="high", image_max_side=None, max_tokens=7,
        max_tokens_field="max_completion_tokens", temperature=0.3, request_logprobs=False,
    )
    reader.answer([ReadRequest(page, crop, TOTAL)])
    body = server.completion_requests[-1].body
    parts = body["messages"][0]["content"]
    assert parts[0]["image_url"]["detail"] == "high"
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert decode(parts[0]["image_url"]["url"]).size == (600, 400)
    assert body["max_completion_tokens"] == 7 and "max_tokens" not in body
    assert body["temperature"] == 0.3 and "logprobs" not in body
    assert reader.version == "openai:gpt-4.1-nano@full"

    zoom = make_reader(server, image_max_side=512, upscale_crops=True)
    zoom.answer([ReadRequest(page, crop, TOTAL)])
    parts = server.completion_requests[-1].body["messages"][0]["content"]
    assert decode(parts[0]["image_url"]["url"]).size == (512, 341)  # page shrunk
    assert decode(parts[1]["image_url"]["url"]).size == (512, 171)  # crop (300x100) zoomed
    assert resize_for_reader(crop, 512).size == (300, 100)  # no zoom by default


# --- answers ------------------------------------------------------------------------------


def test_answers_values_confidence_and_order(server):
    page, crop = page_and_crop()
    server.answers.update({
        TOTAL.question: "  RM 60.30\n",
        DATE.question: "19 Oct 2018",
        INVOICE.question: "inv-2041.",
        COMPANY.question: "",
    })
    server.logprobs[TOTAL.question] = [-0.1, -0.3]
    specs = [TOTAL, DATE, INVOICE, COMPANY] * 3
    with make_reader(server, max_concurrency=4) as reader:
        answers = reader.answer([ReadRequest(page, crop, s) for s in specs])
    assert [a.text for a in answers[:4]] == ["RM 60.30", "19 Oct 2018", "inv-2041.", ""]
    assert [a.value for a in answers[:4]] == ["60.30", "2018-10-19", "INV-2041", None]
    assert answers[4:8] == answers[:4] and answers[8:] == answers[:4]  # order kept
    assert answers[0].confidence == pytest.approx(math.exp(-0.2))
    assert answers[1].confidence == NO_LOGPROB_CONFIDENCE  # no logprobs returned
    assert answers[3].confidence == 0.0  # empty answer
    assert all(a.source == "crop" for a in answers)
    assert len(server.completion_requests) == 12


def test_empty_request_list_sends_nothing(server):
    assert make_reader(server).answer([]) == []
    assert server.requests == []


def test_server_without_logprobs_support_is_handled_once(server):
    page, crop = page_and_crop((300, 300))
    server.answers[TOTAL.question] = "60.30"
    server.script.append(Reply(400, {"error": {"message": "logprobs is not supported for this model"}}))
    reader = make_reader(server)
    first = reader.answer([ReadRequest(page, crop, TOTAL)])
    second = reader.answer([ReadRequest(page, crop, TOTAL)])
    assert first[0].value == second[0].value == "60.30"
    assert first[0].confidence == NO_LOGPROB_CONFIDENCE
    assert [("logprobs" in r.body) for r in server.completion_requests] == [True, False, False]


# --- retries and failures ----------------------------------------------------------------


def test_retries_429_with_retry_after_and_500_then_succeeds(server, monkeypatch):
    page, crop = page_and_crop((300, 300))
    server.answers[TOTAL.question] = "RM 60.30"
    server.script.extend([Reply(429, headers={"Retry-After": "0.2"}), Reply(500, headers=SOON), Reply(503, headers=SOON)])
    start = time.monotonic()
    answers = make_reader(server).answer([ReadRequest(page, crop, TOTAL)])
    assert time.monotonic() - start >= 0.2  # Retry-After honoured
    assert answers[0].value == "60.30"
    assert len(server.completion_requests) == 4


def test_gives_up_after_max_retries_with_a_clear_error(server):
    page, crop = page_and_crop((300, 300))
    server.script.extend([Reply(500, {"error": {"message": "overloaded"}}, SOON)] * 3)
    with pytest.raises(ReaderError) as info:
        make_reader(server, max_retries=2).answer([ReadRequest(page, crop, TOTAL)])
    message = str(info.value)
    assert "HTTP 500" in message and "overloaded" in message and "3 attempts" in message
    assert "'total'" in message  # names the field
    assert len(server.completion_requests) == 3


def test_400_is_not_retried_and_names_status_and_message(server):
    page, crop = page_and_crop((300, 300))
    server.script.append(Reply(400, {"error": {"message": "Invalid image data"}}))
    with pytest.raises(ReaderError, match=r"HTTP 400: Invalid image data") as info:
        make_reader(server).answer([ReadRequest(page, crop, TOTAL)])
    assert info.value.status == 400
    assert len(server.completion_requests) == 1


def test_wrong_key_fails_with_401_without_leaking_either_key(server):
    page, crop = page_and_crop((300, 300))
    wrong = "sk-wrong-OTHER-SECRET-999"
    with pytest.raises(ReaderError) as info:
        make_reader(server, api_key=wrong).answer([ReadRequest(page, crop, TOTAL)])
    assert "HTTP 401" in str(info.value) and "Incorrect API key" in str(info.value)
    assert wrong not in str(info.value) and KEY not in str(info.value)
    assert len(server.completion_requests) == 1


def test_timeout_is_retried(server):
    page, crop = page_and_crop((300, 300))
    server.answers[TOTAL.question] = "60.30"
    server.script.append(Reply(200, delay_s=1.0))
    answers = make_reader(server, timeout_s=0.3).answer([ReadRequest(page, crop, TOTAL)])
    assert answers[0].value == "60.30"
    assert len(server.completion_requests) == 2


def test_timeouts_exhaust_retries(server):
    page, crop = page_and_crop((300, 300))
    server.script.extend([Reply(200, delay_s=0.6)] * 2)
    with pytest.raises(ReaderError, match=r"2 attempts; last: timed out"):
        make_reader(server, timeout_s=0.2, max_retries=1).answer([ReadRequest(page, crop, TOTAL)])


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reader = track(OpenAIReader(OpenAIReaderConfig(
        model="m", base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=2,
    )))
    page, crop = page_and_crop((100, 100))
    with pytest.raises(ReaderError, match=r"3 attempts; last: ConnectError"):
        reader.answer([ReadRequest(page, crop, TOTAL)])


def test_one_failure_fails_the_call_or_becomes_an_empty_answer(server):
    page, crop = page_and_crop((300, 300))
    server.answers[TOTAL.question] = "60.30"
    server.script.append(Reply(404, {"error": {"message": "The model `nope` does not exist"}}))
    with pytest.raises(ReaderError, match="does not exist"):
        make_reader(server, max_concurrency=1).answer([ReadRequest(page, crop, TOTAL)] * 3)
    assert len(server.completion_requests) == 1  # sequential: the rest are not sent

    server.script.append(Reply(404, {"error": {"message": "The model `nope` does not exist"}}))
    answers = make_reader(server, max_concurrency=1, on_error="empty").answer([ReadRequest(page, crop, TOTAL)] * 3)
    assert [(a.value, a.source) for a in answers] == [(None, "error"), ("60.30", "crop"), ("60.30", "crop")]


def test_first_failure_stops_the_others_retrying(server):
    page, crop = page_and_crop((200, 200))
    server.scripts[TOTAL.question] = deque([Reply(503, headers={"Retry-After": "30"})] * 3)
    server.scripts[DATE.question] = deque([Reply(400, {"error": {"message": "bad date request"}}, delay_s=0.2)])
    reader = make_reader(server)
    start = time.monotonic()
    with pytest.raises(ReaderError, match="bad date request"):
        reader.answer([ReadRequest(page, crop, TOTAL), ReadRequest(page, crop, DATE)])
    assert time.monotonic() - start < 3  # did not wait out TOTAL's 30 s Retry-After
    assert len(server.completion_requests) == 2


def test_concurrency_limit_is_respected(server):
    page, crop = page_and_crop((200, 200))
    server.gate = threading.Barrier(3, timeout=30)  # each request is answered once 3 are in flight
    reader = make_reader(server, max_concurrency=3)
    answers = reader.answer([ReadRequest(page, crop, TOTAL)] * 9)
    assert len(answers) == 9
    assert server.max_in_flight == 3  # concurrent (not sequential), but never more than the limit
    assert not server.gate.broken


def test_concurrency_limit_holds_across_threads(server):
    page, crop = page_and_crop((200, 200))
    server.default_delay_s = 0.1
    reader = make_reader(server, max_concurrency=3)
    threads = [threading.Thread(target=reader.answer, args=([ReadRequest(page, crop, TOTAL)] * 6,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(server.completion_requests) == 12
    assert server.max_in_flight == 3  # one limit per reader, not per call


# --- the key stays secret -----------------------------------------------------------------


def test_key_never_in_repr_version_logs_or_errors(server, caplog):
    caplog.set_level(logging.DEBUG)
    config = OpenAIReaderConfig(model="gpt-4.1-nano", base_url=server.base_url, api_key=KEY, max_retries=1)
    reader = track(OpenAIReader(config))
    page, crop = page_and_crop((300, 300))
    # the server echoes the key back in its error message: it is masked
    server.script.extend([Reply(500, {"error": {"message": f"boom for key {KEY}"}})] * 2)
    with pytest.raises(ReaderError) as info:
        reader.answer([ReadRequest(page, crop, TOTAL)])
    texts = [repr(config), str(config), repr(reader), str(reader), reader.version, str(info.value), repr(info.value), caplog.text]
    assert caplog.records  # the retry was logged
    for text in texts:
        assert KEY not in text
    assert "***" in str(info.value)
    assert reader.version == "openai:gpt-4.1-nano@1024"
    assert KEY.encode() not in pickle.dumps(config) and KEY.encode() not in pickle.dumps(reader)


def test_key_from_environment_and_pickle_reads_it_again(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url + "/")
    config = OpenAIReaderConfig(model="gpt-4.1-nano")
    assert config.base_url == server.base_url and config.api_key is None
    server.answers[TOTAL.question] = "60.30"
    page, crop = page_and_crop((200, 200))
    reader = track(pickle.loads(pickle.dumps(OpenAIReader(config))))
    assert reader.answer([ReadRequest(page, crop, TOTAL)])[0].value == "60.30"
    assert server.completion_requests[-1].headers["Authorization"] == f"Bearer {KEY}"


def test_no_key_sends_no_authorization_header():
    with FakeOpenAIServer(api_key=None) as server:
        server.answers[TOTAL.question] = "60.30"
        page, crop = page_and_crop((200, 200))
        reader = track(OpenAIReader(OpenAIReaderConfig(model="qwen2.5vl:7b", base_url=server.base_url, api_key="")))
        assert reader.answer([ReadRequest(page, crop, TOTAL)])[0].value == "60.30"
        assert "Authorization" not in server.completion_requests[0].headers


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "hint"),
    [
        (dict(model=""), "gpt-4.1-nano"),
        (dict(base_url="localhost:8000"), "http"),
        (dict(timeout_s=0), "timeout_s"),
        (dict(max_retries=-1), "max_retries"),
        (dict(max_concurrency=0), "max_concurrency"),
        (dict(max_tokens=0), "max_tokens"),
        (dict(temperature=3), "temperature"),
        (dict(image_max_side=8), "image_max_side"),
        (dict(image_format="gif"), "image_format"),
        (dict(detail="ultra"), "detail"),
        (dict(on_error="ignore"), "on_error"),
        (dict(max_tokens_field="tokens"), "max_tokens_field"),
        (dict(api_key="sk bad key"), "api_key"),
    ],
)
def test_config_validation_says_how_to_fix(overrides, hint):
    settings = dict(model="gpt-4.1-nano", base_url="http://localhost:8000/v1", api_key="")
    settings.update(overrides)
    with pytest.raises(ReaderError, match=hint) as info:
        OpenAIReaderConfig(**settings)
    assert "sk bad key" not in str(info.value)


def test_base_url_forms_and_no_credentials_in_errors():
    config = OpenAIReaderConfig(model="m", base_url="http://localhost:8000/v1/chat/completions/", api_key="")
    assert config.base_url == "http://localhost:8000/v1"
    for url in ["ftp://user:pw@host/v1", "https://user:pw@host:8443/v1"]:
        with pytest.raises(ReaderError) as info:
            OpenAIReaderConfig(model="m", base_url=url)
        assert "pw" not in str(info.value)
