"""POST JSON with retries: exponential backoff with jitter, Retry-After honoured, secrets redacted.

Used by HTTP readers (`cropvlm.readers.openai_compat`). What is retried:

- HTTP 408, 429 and every 5xx (the server is busy, rate-limiting or broken for a moment);
- timeouts and transport errors (connection refused or reset, half-closed responses).

Any other status >= 400 fails at once with `HttpStatusError` (bad request, bad key, unknown
model: sending it again cannot help). After `max_retries` retries the last failure is raised.

Nothing here ever puts a request header into a message or a log line, and every message
goes through `redact()` so a secret that a server echoes back is masked too.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from cropvlm.errors import ReaderError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
_MAX_ERROR_CHARS = 300  # of a server's error body quoted in an exception


class HttpStatusError(ReaderError):
    """The server answered with an HTTP error status (after retries, when it was retryable)."""

    def __init__(self, message: str, status: int, server_message: str) -> None:
        super().__init__(message)
        self.status = status
        self.server_message = server_message


class HttpRetryError(ReaderError):
    """Timeouts or transport errors on every attempt."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5  # retries after the first attempt (0 = one attempt only)
    backoff_s: float = 1.0  # first delay; doubles each retry, with jitter
    max_backoff_s: float = 60.0  # no single wait is longer, Retry-After included

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (0-based).

        Equal jitter: half the exponential delay fixed, half random, so concurrent clients
        spread out but never retry at once. A server's Retry-After is a floor.
        """
        base = self.backoff_s * (2**retry)
        delay = base / 2 + random.uniform(0, base / 2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.max_backoff_s)


def parse_retry_after(headers: httpx.Headers | dict[str, str]) -> float | None:
    """Seconds from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or an HTTP date)."""
    lower = {k.lower(): v for k, v in headers.items()}
    value = lower.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def redact_url(url: str) -> str:
    """The URL without user:password@ credentials, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def make_redactor(secrets: Iterable[str]) -> Callable[[str], str]:
    """A function that masks every non-empty secret in a string with `***`."""
    values = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(text: str) -> str:
        for value in values:
            text = text.replace(value, "***")
        return text

    return redact


def server_error_message(response: httpx.Response) -> str:
    """`error.message` of an OpenAI-style error body, else the start of the body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:_MAX_ERROR_CHARS]
        if isinstance(error, str) and error:
            return error[:_MAX_ERROR_CHARS]
        if body.get("detail"):  # FastAPI-style servers (vLLM validation errors)
            return str(body["detail"])[:_MAX_ERROR_CHARS]
    text = response.text.strip()
    return text[:_MAX_ERROR_CHARS] or response.reason_phrase


def post_json(
    client: httpx.Client,
    url: str,
    payload: dict[str, Any],
    *,
    headers: dict[str, str],
    policy: RetryPolicy,
    redact: Callable[[str], str] = lambda s: s,
    slot: threading.Semaphore | None = None,
    stop: threading.Event | None = None,
    what: str = "request",
) -> Any:
    """POST `payload` as JSON and return the decoded JSON body of a 2xx answer.

    `slot`, when given, is held only while a request is in flight (not while backing off),
    so it bounds concurrent connections across threads. `stop`, when set by another thread,
    ends the retries early (no further attempt, backoff waits cut short) with
    `HttpRetryError`. `what` names the request in logs and errors (e.g. the field).
    Raises `HttpStatusError` or `HttpRetryError`.
    """
    shown_url = redact(redact_url(url))
    last_failure = ""
    for attempt in range(policy.max_retries + 1):
        if stop is not None and stop.is_set():
            raise HttpRetryError(f"{what}: cancelled after {attempt} attempts; last: {last_failure or 'none'}")
        retry_after: float | None = None
        try:
            if slot is not None:
                slot.acquire()
            try:
                response = client.post(url, json=payload, headers=headers)
            finally:
                if slot is not None:
                    slot.release()
        except httpx.TimeoutException as exc:
            last_failure = f"timed out ({type(exc).__name__})"
        except httpx.TransportError as exc:
            last_failure = f"{type(exc).__name__}: {redact(str(exc)) or 'transport error'}"
        else:
            status = response.status_code
            if status < 400:
                try:
                    return response.json()
                except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
                    body = redact(response.text[:_MAX_ERROR_CHARS])
                    raise ReaderError(f"{what}: POST {shown_url} returned HTTP {status} with a body that is not JSON: {body!r}") from None
            message = redact(server_error_message(response))
            if status not in RETRY_STATUSES:
                raise HttpStatusError(
                    f"{what}: POST {shown_url} failed with HTTP {status}: {message}", status, message
                )
            last_failure = f"HTTP {status}: {message}"
            retry_after = parse_retry_after(response.headers)
            if attempt == policy.max_retries:
                raise HttpStatusError(
                    f"{what}: POST {shown_url} failed after {attempt + 1} attempts; last: {last_failure}",
                    status,
                    message,
                )
        if attempt == policy.max_retries:
            break
        delay = policy.delay(attempt, retry_after)
        log.warning(
            "%s: attempt %d/%d failed (%s); retrying in %.2fs",
            what, attempt + 1, policy.max_retries + 1, last_failure, delay,
        )
        if stop is not None:
            stop.wait(delay)
        else:
            time.sleep(delay)
    raise HttpRetryError(
        f"{what}: POST {shown_url} failed after {policy.max_retries + 1} attempts; last: {last_failure}"
    )
