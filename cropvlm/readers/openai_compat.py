"""`OpenAIReader`: a frozen reader behind any OpenAI-compatible chat-completions API.

Works with OpenAI's models (e.g. gpt-4.1-nano, as in the paper), vLLM's and SGLang's
OpenAI servers, Ollama (`http://localhost:11434/v1`), LiteLLM and similar proxies.

The prompt is the paper's reader prompt: one user message whose content is
`[image_url(original page), image_url(crop), text "{Question}\\nGive a very brief answer."]`,
original first, crop second; without a crop only the page is sent. The question is sent
verbatim: its case is kept (the paper's public code lowercases it with `str.capitalize()`).
A degenerate crop (under 2 px on a side) counts as no crop.

Images are converted to RGB, shrunk so the long side is at most `image_max_side` (None =
full resolution; `upscale_crops` also zooms smaller crops up to it, like a VLM processor
would) and sent as base64 data URLs (`data:image/jpeg;base64,...` or PNG).

Answers: `choices[0].message.content`, stripped, is `Answer.text`; `Answer.value` is that
text normalised by the field's type (`cropvlm.normalize.normalize_value`; None when empty
or unparsable). `Answer.confidence` is exp(mean token log-probability) when the server
returns `logprobs.content[*].logprob`, else `NO_LOGPROB_CONFIDENCE` (0.5) for a non-empty
answer; an empty answer always has confidence 0. `Answer.source` is "crop" when a crop was
sent with the page, "page" when only the page was.

Failures: requests go out concurrently (at most `max_concurrency` in flight per reader,
across threads and calls); 408/429/5xx, timeouts and connection errors are retried with
exponential backoff and jitter, honouring Retry-After (see `cropvlm.readers.http_retry`);
other 4xx fail at once. With `on_error="raise"` (the default) the first request that fails
for good fails the whole `answer()` call with a `ReaderError` naming the field, the HTTP
status and the server's message; requests not yet sent are cancelled and those being
retried stop at their next attempt. The extract flow retries document by document, so one
bad document does not sink a batch. With
`on_error="empty"` a failed request becomes `Answer("", None, 0.0, "error")` and a warning.

Servers that reject `logprobs` with HTTP 400 (reasoning models, some proxies): the reader
drops `logprobs` for the rest of its life, logs it once and resends; confidence then falls
back to the constant.

The API key (explicit, or `OPENAI_API_KEY` when `api_key` is None) is sent only in the
Authorization header. It is never in a repr, `version`, a log line or an exception message
(a server echoing it back is masked), and pickling a config or reader drops it: an
unpickled copy reads `OPENAI_API_KEY` again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

import httpx

from cropvlm.errors import ReaderError
from cropvlm.normalize import normalize_value
from cropvlm.readers.base import Answer, ReadRequest
from cropvlm.readers.openai_messages import (  # noqa: F401 - re-exported for callers and tests
    IMAGE_FORMATS,
    NO_LOGPROB_CONFIDENCE,
    READER_PROMPT,
    build_messages,
    confidence_of,
    has_usable_crop,
    image_data_url,
    is_number,
    parse_completion,
    resize_for_reader,
)
from cropvlm.readers.http_retry import HttpStatusError, RetryPolicy, make_redactor, post_json, redact_url

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DETAILS = (None, "auto", "low", "high")
ON_ERROR = ("raise", "empty")
MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens")


def _default_base_url() -> str:
    return os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL


@dataclass(frozen=True)
class OpenAIReaderConfig:
    """Settings of an `OpenAIReader`; validated on creation with errors that say how to fix.

    `api_key=None` means "read OPENAI_API_KEY when the reader is created" (may be empty for
    a local vLLM or Ollama server). The key is left out of repr() and out of pickles.
    """

    model: str
    base_url: str = field(default_factory=_default_base_url)  # API root, e.g. http://localhost:8000/v1
    api_key: str | None = field(default=None, repr=False, compare=False)
    timeout_s: float = 60.0  # per HTTP attempt (connect, read, write, pool)
    max_retries: int = 5  # retries after the first attempt
    backoff_s: float = 1.0  # first retry delay; doubles each retry, with jitter
    max_backoff_s: float = 60.0  # cap of one wait, Retry-After included
    max_concurrency: int = 8  # requests in flight at once, per reader
    max_tokens: int = 32
    max_tokens_field: str = "max_tokens"  # "max_completion_tokens" for OpenAI reasoning models
    temperature: float = 0.0
    image_max_side: int | None = 1024  # long side in pixels; None sends full resolution
    upscale_crops: bool = False  # also zoom crops smaller than image_max_side up to it
    image_format: str = "jpeg"  # "jpeg" or "png"
    jpeg_quality: int = 90
    detail: str | None = None  # OpenAI image detail "auto" | "low" | "high"; None = not sent
    request_logprobs: bool = True
    on_error: str = "raise"  # "raise" | "empty"; see the module docstring

    def __post_init__(self) -> None:
        def bad(message: str) -> ReaderError:
            return ReaderError(f"OpenAIReaderConfig: {message}")

        if not isinstance(self.model, str) or not self.model.strip() or self.model != self.model.strip():
            raise bad(f"model must be a non-empty name without surrounding spaces, e.g. 'gpt-4.1-nano', got {self.model!r}")
        if not isinstance(self.base_url, str):
            raise bad("base_url must be a string such as 'https://api.openai.com/v1'")
        base_url = self.base_url.strip().rstrip("/")
        if base_url.endswith("/chat/completions"):
            base_url = base_url[: -len("/chat/completions")]
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad(
                f"base_url {redact_url(self.base_url)!r} is not an http(s) URL; use the API root, e.g. "
                "'https://api.openai.com/v1', 'http://localhost:8000/v1' (vLLM) or 'http://localhost:11434/v1' "
                "(Ollama), or set OPENAI_BASE_URL"
            )
        object.__setattr__(self, "base_url", base_url)
        if self.api_key is not None:
            if not isinstance(self.api_key, str):
                raise bad("api_key must be a string (or None to read OPENAI_API_KEY)")
            if any(c.isspace() for c in self.api_key.strip()) or any(ord(c) < 32 for c in self.api_key):
                raise bad("api_key contains spaces or control characters; check the value you set (not shown)")
            object.__setattr__(self, "api_key", self.api_key.strip())
        if not is_number(self.timeout_s) or self.timeout_s <= 0:
            raise bad(f"timeout_s must be a positive number of seconds, got {self.timeout_s!r}")
        if not _is_int(self.max_retries) or self.max_retries < 0:
            raise bad(f"max_retries must be an integer >= 0 (0 = no retries), got {self.max_retries!r}")
        if not is_number(self.backoff_s) or self.backoff_s < 0:
            raise bad(f"backoff_s must be a number >= 0, got {self.backoff_s!r}")
        if not is_number(self.max_backoff_s) or self.max_backoff_s < 0:
            raise bad(f"max_backoff_s must be a number >= 0, got {self.max_backoff_s!r}")
        if not _is_int(self.max_concurrency) or self.max_concurrency < 1:
            raise bad(f"max_concurrency must be an integer >= 1, got {self.max_concurrency!r}")
        if not _is_int(self.max_tokens) or self.max_tokens < 1:
            raise bad(f"max_tokens must be an integer >= 1, got {self.max_tokens!r}")
        if self.max_tokens_field not in MAX_TOKENS_FIELDS:
            raise bad(f"max_tokens_field must be one of {MAX_TOKENS_FIELDS}, got {self.max_tokens_field!r}")
        if not is_number(self.temperature) or not 0 <= self.temperature <= 2:
            raise bad(f"temperature must be between 0 and 2 (0 = greedy), got {self.temperature!r}")
        if self.image_max_side is not None and (not _is_int(self.image_max_side) or self.image_max_side < 32):
            raise bad(f"image_max_side must be an integer >= 32 pixels, or None for full resolution, got {self.image_max_side!r}")
        if self.image_format not in IMAGE_FORMATS:
            raise bad(f"image_format must be one of {list(IMAGE_FORMATS)}, got {self.image_format!r}")
        if not _is_int(self.jpeg_quality) or not 1 <= self.jpeg_quality <= 100:
            raise bad(f"jpeg_quality must be an integer from 1 to 100, got {self.jpeg_quality!r}")
        if self.detail not in DETAILS:
            raise bad(f"detail must be one of {list(DETAILS)}, got {self.detail!r}")
        if self.on_error not in ON_ERROR:
            raise bad(f"on_error must be one of {list(ON_ERROR)}, got {self.on_error!r}")

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/chat/completions"

    def __getstate__(self) -> dict[str, Any]:
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        state["api_key"] = None  # never stored: an unpickled copy reads OPENAI_API_KEY
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- the reader ------------------------------------------------------------------------


class OpenAIReader:
    """Reader protocol over an OpenAI-compatible chat-completions API; see the module docstring."""

    def __init__(self, config: OpenAIReaderConfig, client: httpx.Client | None = None) -> None:
        if not isinstance(config, OpenAIReaderConfig):
            raise ReaderError(f"OpenAIReader needs an OpenAIReaderConfig, got {type(config).__name__}")
        self.config = config
        self.version = f"openai:{config.model}@{config.image_max_side if config.image_max_side is not None else 'full'}"
        self._own_client = client is None
        self._client = client
        self._setup()

    def _setup(self) -> None:
        key = self.config.api_key if self.config.api_key is not None else os.environ.get("OPENAI_API_KEY", "").strip()
        self._api_key = key
        self._redact = make_redactor([key])
        self._slots = threading.BoundedSemaphore(self.config.max_concurrency)
        self._lock = threading.Lock()
        self._send_logprobs = self.config.request_logprobs
        self._policy = RetryPolicy(self.config.max_retries, self.config.backoff_s, self.config.max_backoff_s)

    def __repr__(self) -> str:
        return f"OpenAIReader({self.config!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "version": self.version}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.config, self.version = state["config"], state["version"]
        self._own_client, self._client = True, None
        self._setup()

    @property
    def budget(self) -> int | None:
        """Long side in pixels of the images sent (None = full resolution), as OcrReader."""
        return self.config.image_max_side

    @property
    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                n = self.config.max_concurrency
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.config.timeout_s),
                    limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
                )
            return self._client

    def close(self) -> None:
        """Close the HTTP connection pool (a client passed in is left to its owner)."""
        with self._lock:
            if self._client is not None and self._own_client:
                self._client.close()
                self._client = None

    def __enter__(self) -> OpenAIReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def answer(self, requests: Sequence[ReadRequest]) -> list[Answer]:
        requests = list(requests)
        if not requests:
            return []
        urls = self._encode_images(requests)
        client = self.client
        stop = threading.Event()  # set on the first failure: the others stop retrying
        workers = min(self.config.max_concurrency, len(requests))
        if workers == 1:
            return [self._answer_or_fail(client, r, urls, stop) for r in requests]
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-reader")
        try:
            futures = [pool.submit(self._answer_or_fail, client, r, urls, stop) for r in requests]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in futures if f in done and f.exception() is not None]
            if failed:  # the first failure in request order among those done
                stop.set()
                raise failed[0].exception()  # type: ignore[misc]
            return [future.result() for future in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

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

    def _answer_or_fail(
        self, client: httpx.Client, request: ReadRequest, urls: dict[int, str], stop: threading.Event
    ) -> Answer:
        try:
            return self._answer_one(client, request, urls, stop)
        except ReaderError as exc:
            if self.config.on_error == "raise":
                raise
            log.warning("%s", exc)
            return Answer("", None, 0.0, "error")

    def payload(self, request: ReadRequest, urls: dict[int, str] | None = None) -> dict[str, Any]:
        """The JSON body sent for one request (images encoded unless `urls` has them)."""
        urls = urls if urls is not None else self._encode_images([request])
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

    def _answer_one(
        self, client: httpx.Client, request: ReadRequest, urls: dict[int, str], stop: threading.Event
    ) -> Answer:
        what = f"{self.version} field {request.spec.field!r}"
        body = self.payload(request, urls)
        try:
            response = self._post(client, body, what, stop)
        except HttpStatusError as exc:
            if not (exc.status == 400 and body.get("logprobs") and "logprob" in exc.server_message.lower()):
                raise
            with self._lock:
                if self._send_logprobs:
                    self._send_logprobs = False
                    log.warning("%s: the server rejects logprobs (%s); sending without them from now on", self.version, exc.server_message)
            body.pop("logprobs", None)
            response = self._post(client, body, what, stop)
        try:
            text, logprobs = parse_completion(response)
        except ReaderError as exc:
            raise ReaderError(f"{what}: {self._redact(str(exc))}") from None
        value = normalize_value(text, request.spec.type) if text else None
        return Answer(text, value or None, confidence_of(text, logprobs), "crop" if has_usable_crop(request) else "page")

    def _post(self, client: httpx.Client, body: dict[str, Any], what: str, stop: threading.Event) -> Any:
        return post_json(
            client,
            self.config.endpoint,
            body,
            headers=self._headers(),
            policy=self._policy,
            redact=self._redact,
            slot=self._slots,
            stop=stop,
            what=what,
        )


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
