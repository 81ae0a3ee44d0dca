"""A local OpenAI-compatible chat-completions server, with the trouble real providers cause:
slow answers, error statuses (with ``Retry-After``), replies without usage, and going away
(connections refused) and coming back on the same port.

``SimulatedLLM(responder).start()``; point a client at ``llm.base_url``. The responder turns a
request body into the reply text; tests change the trouble knobs at any time.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from valdrix.simulator.aws_server import free_port

HOST = "127.0.0.1"
COMPLETIONS_PATH = "/v1/chat/completions"

Responder = Callable[[dict[str, Any]], str]


def empty_json_object(request: dict[str, Any]) -> str:
    return "{}"


def token_estimate(text: str) -> int:
    """About four bytes a token, as providers count English."""
    return math.ceil(len(text.encode()) / 4)


class SimulatedLLM:
    def __init__(self, responder: Responder | None = None, port: int | None = None) -> None:
        self.responder = responder or empty_json_object
        self.port = port or free_port(HOST)
        # Trouble, settable at any time.
        self.delay_seconds = 0.0
        self.fail_status: int | None = None
        self.fail_remaining: int | None = None  # the next N calls fail; None: every call
        self.retry_after: str | None = None  # sent with failures
        self.report_usage = True
        # What arrived, for assertions.
        self.requests: list[dict[str, Any]] = []
        self._calls = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self._killed = threading.Event()  # set by kill(); a new one per life of the server

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    @property
    def calls(self) -> int:
        """Requests received, failed ones included."""
        with self._lock:
            return self._calls

    def reset_counts(self) -> None:
        with self._lock:
            self._calls = 0
            self.requests.clear()

    def start(self) -> SimulatedLLM:
        if self._server is None:
            self._killed = threading.Event()
            server = ThreadingHTTPServer((HOST, self.port), self._handler())
            server.daemon_threads = True
            # A short poll keeps kill() quick: shutdown() waits for the loop's next poll.
            serve = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
            serve.start()
            self._server = server
        return self

    def stop(self) -> None:
        self.kill()

    def kill(self) -> None:
        """Stop listening, so new connections are refused, and drop open ones (answers being
        delayed are never sent)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._killed.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def revive(self) -> SimulatedLLM:
        """Listen again on the same port."""
        return self.start()

    def __enter__(self) -> SimulatedLLM:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _take_failure(self) -> int | None:
        """The status this call must fail with, if any, counting down ``fail_remaining``."""
        with self._lock:
            if self.fail_status is None:
                return None
            if self.fail_remaining is None:
                return self.fail_status
            if self.fail_remaining <= 0:
                return None
            self.fail_remaining -= 1
            return self.fail_status

    def _completion(self, request: dict[str, Any], text: str) -> dict[str, Any]:
        prompt = "".join(
            message["content"]
            for message in request.get("messages", [])
            if isinstance(message, dict) and isinstance(message.get("content"), str)
        )
        reply: dict[str, Any] = {
            "id": f"chatcmpl-sim-{uuid.uuid4().hex[:16]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "simulated"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }
        if self.report_usage:
            prompt_tokens, completion_tokens = token_estimate(prompt), token_estimate(text)
            reply["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        return reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real providers do

            def log_message(self, format: str, *args: Any) -> None:
                return

            def setup(self) -> None:
                super().setup()
                with sim._lock:
                    sim._connections.add(self.connection)

            def finish(self) -> None:
                with sim._lock:
                    sim._connections.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                killed = sim._killed
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with sim._lock:
                    sim._calls += 1
                if self.path != COMPLETIONS_PATH:
                    self._error(404, f"no route {self.path}")
                    return
                try:
                    request = json.loads(raw)
                except ValueError:
                    request = None
                if not isinstance(request, dict):
                    self._error(400, "the body must be a JSON object")
                    return
                with sim._lock:
                    sim.requests.append(request)
                if sim.delay_seconds and killed.wait(sim.delay_seconds):
                    self.close_connection = True  # killed while "thinking": hang up unanswered
                    return
                status = sim._take_failure()
                if status is not None:
                    extra = {"Retry-After": sim.retry_after} if sim.retry_after else {}
                    self._error(status, f"simulated HTTP {status}", extra)
                    return
                try:
                    text = sim.responder(request)
                except Exception as exc:  # a broken responder is the test's bug: say so
                    self._error(500, f"responder failed: {exc!r}")
                    return
                self._send(200, sim._completion(request, text))

            def _error(
                self, status: int, message: str, headers: dict[str, str] | None = None
            ) -> None:
                kind = "server_error" if status >= 500 else "invalid_request_error"
                body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
                self._send(status, body, headers)

            def _send(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    self.close_connection = True  # the client or kill() hung up first

        return Handler
