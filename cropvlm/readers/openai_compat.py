"""`OpenAIReader`: a frozen reader behind any OpenAI-compatible chat-completions API.

OpenAI's models (gpt-4.1-nano, as in the paper), vLLM and SGLang servers, Ollama
(`http://localhost:11434/v1`), LiteLLM and similar proxies, through the official `openai`
client. Messages and answers are built and read in `cropvlm.readers.openai_messages`.

Requests go out concurrently, at most `max_concurrency` in flight per reader across threads
and calls. The client retries 408/409/429/5xx, timeouts and dropped connections with its own
exponential backoff and jitter, honouring Retry-After; other 4xx fail at once. With
`on_error="raise"` the first request that fails for good fails the whole `answer()` call
with a `ReaderError` naming the field, the HTTP status and the server's message, and the
other requests are cancelled; with `on_error="empty"` it becomes `Answer("", None, 0.0,
"error")` and a warning. A server that rejects `logprobs` with HTTP 400 is sent none from then on.

The API key (explicit, or `OPENAI_API_KEY` when `api_key` is None) is never in a repr,
`version`, log line or error (a server echoing it back is masked), and pickles drop it:
an unpickled copy reads `OPENAI_API_KEY` again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections.abc import Coroutine, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import openai
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from cropvlm.errors import ReaderError
from cropvlm.normalize import normalize_value
from cropvlm.readers.base import Answer, ReadRequest
from cropvlm.readers.openai_messages import (
    build_messages,
    confidence_of,
    has_usable_crop,
    image_data_url,
    parse_completion,
    resize_for_reader,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_MAX_ERROR_CHARS = 300  # of a server's error message quoted in an exception


def _default_base_url() -> str:
    return os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL


class OpenAIReaderConfig(BaseModel):
    """Settings of an `OpenAIReader`; invalid values raise a `ReaderError` that names the field.

    `api_key=None` means "read OPENAI_API_KEY when the reader is created" (may be empty for
    a local vLLM or Ollama server).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    model: str  # e.g. "gpt-4.1-nano"
    base_url: str = Field(default_factory=_default_base_url, validate_default=True)  # API root
    api_key: SecretStr | None = Field(default=None, repr=False)
    timeout_s: float = Field(60.0, gt=0)  # per HTTP attempt
    max_retries: int = Field(5, ge=0)  # retries after the first attempt, with the client's backoff
    max_concurrency: int = Field(8, ge=1)  # requests in flight at once, per reader
    max_tokens: int = Field(32, ge=1)
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"  # the latter for reasoning models
    temperature: float = Field(0.0, ge=0, le=2)
    image_max_side: int | None = Field(1024, ge=32)  # long side in pixels; None sends full resolution
    upscale_crops: bool = False  # also zoom crops smaller than image_max_side up to it
    image_format: Literal["jpeg", "png"] = "jpeg"
    jpeg_quality: int = Field(90, ge=1, le=100)
    detail: Literal["auto", "low", "high"] | None = None  # OpenAI image detail; None = not sent
    request_logprobs: bool = True
    on_error: Literal["raise", "empty"] = "raise"

    def __init__(self, **settings: Any) -> None:
        try:
            super().__init__(**settings)
        except ValidationError as exc:  # its text quotes the inputs, the key among them
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
            raise ReaderError(f"OpenAIReaderConfig: {problems}") from None

    @field_validator("model")
    @classmethod
    def _model_named(cls, model: str) -> str:
        if not model.strip() or model != model.strip():
            raise ValueError("name a model without surrounding spaces, e.g. 'gpt-4.1-nano'")
        return model

    @field_validator("base_url")
    @classmethod
    def _api_root(cls, url: str) -> str:
        url = url.strip().rstrip("/").removesuffix("/chat/completions")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
            raise ValueError(
                "use an http(s) API root without user:password@, e.g. 'https://api.openai.com/v1', "
                "'http://localhost:8000/v1' (vLLM) or 'http://localhost:11434/v1' (Ollama), or set OPENAI_BASE_URL"
            )
        return url

    @field_validator("api_key")
    @classmethod
    def _key_printable(cls, key: SecretStr | None) -> SecretStr | None:
        if key is None:
            return None
        value = key.get_secret_value().strip()
        if any(c.isspace() or ord(c) < 32 for c in value):
            raise ValueError("contains spaces or control characters; check the value you set (not shown)")
        return SecretStr(value)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        return {**state, "__dict__": {**state["__dict__"], "api_key": None}}  # never pickled


class ReaderRequestError(ReaderError):
    """A request that failed for good; `status` is the last HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class OpenAIReader:
    """Reader protocol over an OpenAI-compatible chat-completions API; see the module docstring.

    The client and the in-flight limit live on an event loop in a thread of the reader's
    own, started on first use: any thread can call `answer()`, and a failure cancels the
    requests still waiting or backing off at once.
    """

    def __init__(self, config: OpenAIReaderConfig) -> None:
        if not isinstance(config, OpenAIReaderConfig):
            raise ReaderError(f"OpenAIReader needs an OpenAIReaderConfig, got {type(config).__name__}")
        self.config = config
        self.version = f"openai:{config.model}@{config.image_max_side if config.image_max_side is not None else 'full'}"
        self._setup()

    def _setup(self) -> None:
        key = self.config.api_key
        self._key = key if key is not None else SecretStr(os.environ.get("OPENAI_API_KEY", "").strip())
        # a keyless server (vLLM, Ollama) gets no Authorization header, not the client's placeholder key
        self._extra_headers = None if self._key.get_secret_value() else {"Authorization": openai.Omit()}
        self._send_logprobs = self.config.request_logprobs
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None  # with its thread, client and slots: see _run

    def __repr__(self) -> str:
        return f"OpenAIReader({self.config!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "version": self.version}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.config, self.version = state["config"], state["version"]
        self._setup()

    @property
    def budget(self) -> int | None:
        """Long side in pixels of the images sent (None = full resolution), as OcrReader."""
        return self.config.image_max_side

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="openai-reader", daemon=True)
                self._thread.start()
                weakref.finalize(self, _stop_loop, self._loop)  # the thread ends with a reader never closed
                self._client = self._make_client()
                self._slots = asyncio.Semaphore(self.config.max_concurrency)
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    def _make_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self._key.get_secret_value() or "unused",  # the client insists on one; see _setup
            base_url=self.config.base_url,
            timeout=self.config.timeout_s,
            max_retries=self.config.max_retries,
        )

    def close(self) -> None:
        """Close the connection pool and stop the reader's event loop (a later call starts them again)."""
        with self._lock:
            loop, self._loop = self._loop, None
            if loop is None:
                return
            asyncio.run_coroutine_threadsafe(self._client.close(), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join()
            loop.close()

    def __enter__(self) -> OpenAIReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def answer(self, requests: Sequence[ReadRequest]) -> list[Answer]:
        requests = list(requests)
        if not requests:
            return []
        return self._run(self._answer_all(requests, self._encode_images(requests)))

    async def _answer_all(self, requests: list[ReadRequest], urls: dict[int, str]) -> list[Answer]:
        if len(requests) == 1 or self.config.max_concurrency == 1:  # in order: after a failure none is sent
            return [await self._answer_or_fail(r, urls) for r in requests]
        tasks = [asyncio.create_task(self._answer_or_fail(r, urls)) for r in requests]
        try:
            return list(await asyncio.gather(*tasks))
        finally:  # after the first failure: cancel those still waiting, sending or backing off
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _encode_images(self, requests: list[ReadRequest]) -> dict[int, str]:
        """Data URL of every distinct page and crop, by identity (the list keeps them alive)."""
        cfg = self.config
        urls: dict[int, str] = {}
        for request in requests:
            if id(request.page) not in urls:
                image = resize_for_reader(request.page, cfg.image_max_side)
                urls[id(request.page)] = image_data_url(image, cfg.image_format, cfg.jpeg_quality)
            if has_usable_crop(request) and id(request.crop) not in urls:
                image = resize_for_reader(request.crop, cfg.image_max_side, cfg.upscale_crops)  # type: ignore[arg-type]
                urls[id(request.crop)] = image_data_url(image, cfg.image_format, cfg.jpeg_quality)
        return urls

    async def _answer_or_fail(self, request: ReadRequest, urls: dict[int, str]) -> Answer:
        try:
            return await self._answer_one(request, urls)
        except ReaderError as exc:
            if self.config.on_error == "raise":
                raise
            log.warning("%s", exc)
            return Answer("", None, 0.0, "error")

    def payload(self, request: ReadRequest, urls: dict[int, str]) -> dict[str, Any]:
        """The arguments of `chat.completions.create` for one request."""
        crop_url = urls[id(request.crop)] if has_usable_crop(request) else None
        cfg = self.config
        body: dict[str, Any] = {
            "model": cfg.model,
            "messages": build_messages(request.spec.question, urls[id(request.page)], crop_url, cfg.detail),
            cfg.max_tokens_field: cfg.max_tokens,
            "temperature": cfg.temperature,
        }
        if self._send_logprobs:
            body["logprobs"] = True
        return body

    async def _answer_one(self, request: ReadRequest, urls: dict[int, str]) -> Answer:
        what = f"{self.version} field {request.spec.field!r}"
        body = self.payload(request, urls)
        try:
            completion = await self._create(body, what)
        except ReaderRequestError as exc:
            if not (exc.status == 400 and body.get("logprobs") and "logprob" in str(exc).lower()):
                raise
            if self._send_logprobs:  # one event loop: no other task runs in between
                self._send_logprobs = False
                log.warning("%s: the server rejects logprobs; sending without them from now on", self.version)
            body.pop("logprobs")
            completion = await self._create(body, what)
        try:
            text, logprobs = parse_completion(completion.to_dict())
        except ReaderError as exc:
            raise ReaderError(f"{what}: {self._mask(str(exc))}") from None
        value = normalize_value(text, request.spec.type) if text else None
        return Answer(text, value or None, confidence_of(text, logprobs), "crop" if has_usable_crop(request) else "page")

    async def _create(self, body: dict[str, Any], what: str) -> Any:
        async with self._slots:
            try:
                return await self._client.chat.completions.create(**body, extra_headers=self._extra_headers)
            except openai.APIError as exc:
                raise self._failure(what, exc) from None

    def _failure(self, what: str, exc: openai.APIError) -> ReaderRequestError:
        """`exc` as a ReaderError: the field, attempts made, HTTP status and server message."""
        status = getattr(exc, "status_code", None)
        if isinstance(exc, openai.APIStatusError):
            last = f"HTTP {status}: {_server_message(exc)}"
        elif isinstance(exc, openai.APITimeoutError):
            last = "timed out"
        elif isinstance(exc, openai.APIConnectionError) and exc.__cause__ is not None:
            last = f"{type(exc.__cause__).__name__}: {exc.__cause__}"
        else:
            last = exc.message
        attempts = 1 + int(exc.request.headers.get("x-stainless-retry-count", 0))  # set by the client
        how = f"with {last}" if attempts == 1 else f"after {attempts} attempts; last: {last}"
        return ReaderRequestError(self._mask(f"{what}: POST {self.config.base_url}/chat/completions failed {how}"), status)

    def _mask(self, text: str) -> str:
        key = self._key.get_secret_value()
        return text.replace(key, "***") if key else text


def _stop_loop(loop: asyncio.AbstractEventLoop) -> None:
    if not loop.is_closed():
        loop.call_soon_threadsafe(loop.stop)


def _server_message(exc: openai.APIStatusError) -> str:
    """`error.message` of an OpenAI-style error body (`detail` for FastAPI ones), else the body."""
    body = exc.body  # the client has already taken `error` out of {"error": {...}}
    if isinstance(body, dict):
        body = body.get("message") or body.get("detail") or body
    return str(body or exc.response.reason_phrase)[:_MAX_ERROR_CHARS]


def reader_from_spec(rest: str, **overrides: Any) -> OpenAIReader:
    """The reader of a spec `openai:MODEL[@MAX_SIDE|full]`, given what follows `openai:`.

    `"gpt-4.1-nano"` -> image_max_side 1024; `"qwen2.5vl:7b@768"`; `"gpt-4.1-nano@full"`.
    Base URL and key come from OPENAI_BASE_URL / OPENAI_API_KEY; `overrides` set other fields.
    """
    from cropvlm.errors import SpecError

    model, _, side = rest.strip().rpartition("@") if "@" in rest else (rest.strip(), "", "")
    if not model:
        raise SpecError(f"bad reader spec 'openai:{rest}': name a model, e.g. openai:gpt-4.1-nano[@1024]")
    try:
        max_side = None if side == "full" else int(side) if side else 1024
    except ValueError:
        raise SpecError(f"bad reader spec 'openai:{rest}': after '@' give the image long side in pixels or 'full'") from None
    try:
        return OpenAIReader(OpenAIReaderConfig(model=model, image_max_side=max_side, **overrides))
    except ReaderError as exc:
        raise SpecError(f"bad reader spec 'openai:{rest}': {exc}") from None
