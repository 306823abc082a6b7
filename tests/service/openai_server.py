"""A scriptable OpenAI-protocol server for tests: ``/v1/models`` and ``/v1/chat/completions``.

It answers the way vLLM, llama.cpp's server and Ollama's ``/v1`` do, on a real uvicorn on
127.0.0.1 in a background thread. Replies are the :class:`~tests.service.ollama_server.Reply`
objects of the Ollama test server (same pieces, same faults); how reasoning travels is the
server's ``reasoning_style``:

* ``"reasoning_content"``: ``delta.reasoning_content`` (vLLM's deepseek_r1 parser, llama.cpp);
* ``"reasoning"``: ``delta.reasoning`` (Ollama's OpenAI-compatible endpoint);
* ``"raw"``: the model's text with its ``<think>`` tags in ``delta.content``.

Streams are Server-Sent Events: a first chunk with ``role``, one chunk per piece, a last chunk
with ``finish_reason``, a usage chunk when ``stream_options.include_usage`` asks, then
``data: [DONE]``. Headers leave at once (before the first token, as uvicorn-based servers do).
Unknown models get ``404`` with ``code: model_not_found``; with ``api_key`` set, a missing or
wrong bearer token gets ``401``.

Usage::

    with start_openai_server(reasoning_style="reasoning") as server:
        server.script.push(Reply.answer("Hi", "greeting"))
        backend = OpenAIBackend(base_url=server.base_url, model=DEFAULT_MODEL, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn

from tests.service.ollama_server import (
    _ABORTING,
    DEFAULT_MODEL,
    Piece,
    Receive,
    RecordedRequest,
    Recorder,
    Reply,
    Scope,
    Send,
)

ReasoningStyle = Literal["reasoning_content", "reasoning", "raw"]


@dataclass
class OpenAIScript:
    """What the server serves and how; tests change it between calls."""

    models: list[str] = field(default_factory=lambda: [DEFAULT_MODEL])
    reasoning_style: ReasoningStyle = "reasoning_content"
    default_reply: Reply = field(default_factory=Reply.answer)
    replies: list[Reply] = field(default_factory=list)
    api_key: str | None = None
    models_status: int | None = None  # /v1/models answers this status instead
    owned_by: str = "inhouse-tests"

    def push(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def next_reply(self) -> Reply:
        return self.replies.pop(0) if self.replies else self.default_reply


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class OpenAIApp:
    """Plain ASGI so the wire behaviour stays under the test's control."""

    def __init__(self, script: OpenAIScript, recorder: Recorder) -> None:
        self.script = script
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        record = self.recorder.add(RecordedRequest(scope["method"], scope["path"], body))
        record.headers = headers  # type: ignore[attr-defined]  # for auth assertions
        try:
            await self.route(scope["method"], scope["path"], body, headers, record, receive, send)
        finally:
            self.recorder.changed()

    async def route(
        self,
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str],
        record: RecordedRequest,
        receive: Receive,
        send: Send,
    ) -> None:
        routes = {"/v1/models": "GET", "/v1/chat/completions": "POST"}
        if path not in routes:
            await _send_json(send, 404, _error(f"no route {path}", "not_found_error"))
        elif routes[path] != method:
            await _send_json(send, 405, _error("method not allowed", "invalid_request_error"))
        elif self.script.api_key and headers.get("authorization") != (
            f"Bearer {self.script.api_key}"
        ):
            await _send_json(
                send, 401, _error("Incorrect API key provided", "invalid_request_error", "401")
            )
        elif path == "/v1/models":
            await self.models(send)
        else:
            await self.chat(body, record, receive, send)
            return
        record.finished = True

    async def models(self, send: Send) -> None:
        if self.script.models_status is not None:
            await _send_json(send, self.script.models_status, _error("boom", "server_error"))
            return
        data = [
            {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": self.script.owned_by}
            for m in self.script.models
        ]
        await _send_json(send, 200, {"object": "list", "data": data})

    async def chat(self, body: Any, record: RecordedRequest, receive: Receive, send: Send) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            await _send_json(send, 400, _error("invalid body", "invalid_request_error"))
            return
        name = body.get("model")
        if name not in self.script.models:
            message = f"The model `{name}` does not exist."
            await _send_json(send, 404, _error(message, "invalid_request_error", "model_not_found"))
            return
        reply = self.script.next_reply()
        if reply.status is not None:
            await _send_json(send, reply.status, _error(reply.error, "server_error"))
            return
        style = self.script.reasoning_style
        if style == "raw":
            pieces: list[Piece] = [("", c) for c in reply.raw_chunks()]
        else:
            pieces = reply.split_chunks()
        await _Stream(str(name), body, reply, pieces, style, record, receive, send).run()


class _Stream:
    """Plays one completion, watching for the client going away."""

    def __init__(
        self,
        name: str,
        body: dict[str, Any],
        reply: Reply,
        pieces: list[Piece],
        style: ReasoningStyle,
        record: RecordedRequest,
        receive: Receive,
        send: Send,
    ) -> None:
        self.name, self.body, self.reply, self.pieces, self.style = name, body, reply, pieces, style
        self.record, self.receive, self.send = record, receive, send
        self.gone = asyncio.Event()
        self.id = f"chatcmpl-{id(self):x}"
        self.created = int(time.time())

    async def run(self) -> None:
        watcher = asyncio.create_task(self._watch())
        try:
            if self.body.get("stream"):
                await self._stream()
            else:
                await self._single()
        except OSError:
            self.record.disconnected = True
        finally:
            watcher.cancel()

    async def _watch(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self.gone.set()

    async def _pause(self, seconds: float) -> bool:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gone.wait(), seconds)
        if self.gone.is_set():
            self.record.disconnected = True
        return self.gone.is_set()

    def _delta(self, thinking: str, content: str) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        if thinking:
            delta[self.style] = thinking
        if content or not thinking:
            delta["content"] = content
        return delta

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    async def _event(self, payload: Any) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        await self._body(f"data: {data}\n\n".encode())

    async def _body(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def _stream(self) -> None:
        reply = self.reply
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
            }
        )
        if await self._pause(reply.first_token_delay_s):
            return
        await self._event(self._chunk({"role": "assistant", "content": ""}))
        for i, (thinking, content) in enumerate(self.pieces):
            if i and await self._pause(reply.chunk_delay_s):
                return
            if i in reply.inject:
                await self._body(reply.inject[i].encode() + b"\n\n")
            if reply.disconnect_after is not None and i >= reply.disconnect_after:
                _ABORTING.set(True)
                return
            await self._event(self._chunk(self._delta(thinking, content)))
        if len(self.pieces) in reply.inject:
            await self._body(reply.inject[len(self.pieces)].encode() + b"\n\n")
        if reply.disconnect_after is not None:
            _ABORTING.set(True)
            return
        if not reply.omit_done:
            await self._event(self._chunk({}, finish=reply.done_reason))
            if (self.body.get("stream_options") or {}).get("include_usage"):
                usage = {**self._chunk({}), "choices": [], "usage": self._usage()}
                await self._event(usage)
            await self._event("[DONE]")
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})
        self.record.finished = True

    async def _single(self) -> None:
        if await self._pause(self.reply.first_token_delay_s):
            return
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(c for _, c in self.pieces),
        }
        if self.style != "raw":
            message[self.style] = "".join(t for t, _ in self.pieces) or None
        payload = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.name,
            "choices": [{"index": 0, "message": message, "finish_reason": self.reply.done_reason}],
            "usage": self._usage(),
        }
        await _send_json(self.send, 200, payload)
        self.record.finished = True

    def _usage(self) -> dict[str, int]:
        words = sum(len(str(m.get("content", "")).split()) for m in self.body["messages"])
        prompt = self.reply.prompt_eval_count or max(1, words)
        completion = self.reply.eval_count or len(self.pieces)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }


async def _send_json(send: Send, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class OpenAITestServer:
    """A running server: its base URL (``.../v1``), its script, what it received."""

    def __init__(self, script: OpenAIScript | None = None) -> None:
        self.script = script or OpenAIScript()
        self.recorder = Recorder(10_000)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            OpenAIApp(self.script, self.recorder),
            log_config=None,
            log_level="error",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._sock])),
            name=f"openai-test-server:{self.port}",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 10.0) -> OpenAITestServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the OpenAI test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._server.force_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> OpenAITestServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.recorder.snapshot() if r.path == "/v1/chat/completions"]

    def settled_chat_requests(self, timeout: float = 5.0) -> list[RecordedRequest]:
        """The chat requests once every one has finished or been abandoned."""
        return self.recorder.settled("/v1/chat/completions", timeout)

    def wait_for_disconnect(self, timeout: float = 5.0) -> bool:
        return self.recorder.wait_for(lambda rs: any(r.disconnected for r in rs), timeout)


def start_openai_server(
    script: OpenAIScript | None = None, **script_fields: Any
) -> OpenAITestServer:
    """Start a server on a free loopback port; stop it with ``.stop()`` or ``with``."""
    return OpenAITestServer(script or OpenAIScript(**script_fields)).start()
