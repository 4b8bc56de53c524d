"""A real local HTTP server that speaks the OpenAI chat-completions protocol, for tests.

    with FakeOpenAIServer(api_key="sk-test") as server:
        server.answers["What is the total amount paid?"] = "RM 60.30"
        server.script.append(Reply(status=429, headers={"Retry-After": "0"}))
        reader = OpenAIReader(OpenAIReaderConfig(model="m", base_url=server.base_url, api_key="sk-test"))
        ...
        server.requests  # every request received: RecordedRequest(path, headers, body)

A stdlib `ThreadingHTTPServer` on 127.0.0.1 with a free port, served from a daemon thread.
POST /v1/chat/completions: a wrong or missing `Authorization: Bearer <api_key>` gets 401 (no
check when api_key is None). Otherwise the next scripted `Reply` is used if any (status,
body, headers, delay; from `scripts[question]` first, then `script`), else a 200 completion whose content is `answers[question]` (the
question is the prompt text before "\\nGive a very brief answer."; default `default_answer`),
with `logprobs.content` from `logprobs[question]` when the request asked for logprobs.
`max_in_flight` is the most requests handled at the same time.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROMPT_SUFFIX = "\nGive a very brief answer."


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able; None = a normal completion (for 200) or an error body
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # sleep before answering (slow server / client timeout)


@dataclass
class RecordedRequest:
    path: str
    headers: Message  # names case-insensitive, as in HTTP (the openai client sends them lowercase)
    body: Any


def question_of(body: Any) -> str:
    """The question inside the prompt text of a chat-completions request body."""
    try:
        parts = body["messages"][-1]["content"]
        text = next(p["text"] for p in parts if p.get("type") == "text")
    except (KeyError, TypeError, StopIteration, IndexError):
        return ""
    return text[: -len(PROMPT_SUFFIX)] if text.endswith(PROMPT_SUFFIX) else text


class FakeOpenAIServer:
    def __init__(self, api_key: str | None = "sk-test") -> None:
        self.api_key = api_key
        self.answers: dict[str, str] = {}
        self.logprobs: dict[str, list[float]] = {}
        self.default_answer = ""
        self.default_delay_s = 0.0
        self.script: deque[Reply] = deque()
        self.scripts: dict[str, deque[Reply]] = {}  # by question, used before `script`
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate: threading.Barrier | None = None  # set: every request waits there before answering
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    def start(self) -> FakeOpenAIServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def completion_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # --- protocol ---

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        with self._lock:
            self.requests.append(RecordedRequest(handler.path, handler.headers, body))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            per_question = self.scripts.get(question_of(body))
            if per_question:
                reply = per_question.popleft()
            else:
                reply = self.script.popleft() if self.script else None
        try:
            if self.gate is not None:
                try:
                    self.gate.wait()
                except threading.BrokenBarrierError:
                    pass  # the test sees it in max_in_flight
            reply = self._reply_for(handler, body, reply)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            self._send(handler, reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _reply_for(self, handler: BaseHTTPRequestHandler, body: Any, reply: Reply | None) -> Reply:
        if handler.path != "/v1/chat/completions":
            return Reply(404, {"error": {"message": f"no route {handler.path}", "type": "invalid_request_error"}})
        if self.api_key is not None and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            return Reply(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error"}})
        if not isinstance(body, dict) or "model" not in body or "messages" not in body:
            return Reply(400, {"error": {"message": "model and messages are required", "type": "invalid_request_error"}})
        if reply is not None:
            if reply.status == 200 and reply.body is None:
                return Reply(200, self.completion(body), reply.headers, reply.delay_s)
            if reply.body is None:
                reply.body = {"error": {"message": f"scripted error {reply.status}", "type": "server_error"}}
            return reply
        return Reply(200, self.completion(body), delay_s=self.default_delay_s)

    def completion(self, body: dict) -> dict:
        question = question_of(body)
        content = self.answers.get(question, self.default_answer)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }
        if body.get("logprobs") and question in self.logprobs:
            choice["logprobs"] = {
                "content": [
                    {"token": f"t{i}", "logprob": lp, "bytes": None, "top_logprobs": []}
                    for i, lp in enumerate(self.logprobs[question])
                ]
            }
        else:
            choice["logprobs"] = None
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [choice],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        data = json.dumps(reply.body).encode() if not isinstance(reply.body, (bytes, str)) else (
            reply.body.encode() if isinstance(reply.body, str) else reply.body
        )
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()
