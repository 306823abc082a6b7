"""A scriptable, protocol-faithful Ollama server for tests and benchmarks.

It speaks the parts of Ollama's HTTP API the service uses (``docs/api.md`` upstream):
``GET /``, ``GET /api/version``, ``GET /api/tags``, ``POST /api/show`` and ``POST /api/chat``
(NDJSON streaming or a single JSON object), served by a real uvicorn on 127.0.0.1 in a
background thread, so concurrent streams, slow tokens and dropped connections are real.

Faithful details: unknown models get ``404 {"error": "model 'x' not found"}``; names without
a tag mean ``:latest``; ``"think": true`` on a model without the ``thinking`` capability gets
``400 {"error": "\\"x\\" does not support thinking"}``; response headers leave with the first
token (as Ollama's do), so a slow first token also delays the headers; the final stream line
carries ``done_reason`` and the durations (nanoseconds) and token counts.

What a reply looks like on the wire depends on the request, like Ollama:

* ``think: true`` (thinking model): reasoning in ``message.thinking``, the answer in
  ``message.content``, tags removed, whitespace after each tag dropped;
* ``think: false`` (thinking model): reasoning dropped, only the answer;
* ``think`` absent, or a model without thinking: the raw text, ``<think>`` tags and all.

Usage::

    with start_server() as server:             # Script() with deepseek-r1:8b by default
        server.script.push(Reply.raw("<think>hm</think>Hi", split_at=[3, 9]))
        ... point OLLAMA_HOST at server.url ...
        assert server.chat_requests()[0].body["options"]["temperature"] == 0.6

Run it by hand: ``python -m tests.service.ollama_server --port 11434``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import logging
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import uvicorn

OPEN, CLOSE = "<think>", "</think>"
DEFAULT_MODEL = "deepseek-r1:8b"
DEFAULT_REASONING = "The user greets me. A short, friendly answer will do."
DEFAULT_ANSWER = "Hello! How can I help you today?"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Piece = tuple[str, str]  # (thinking, content)

_ABORTING: contextvars.ContextVar[bool] = contextvars.ContextVar("ollama_abort", default=False)


class _QuietAbort(logging.Filter):
    """Hide uvicorn's complaint about the mid-stream drops we play on purpose (only ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _ABORTING.get()


_UVICORN_LOG = logging.getLogger("uvicorn.error")
if not any(isinstance(f, _QuietAbort) for f in _UVICORN_LOG.filters):
    _UVICORN_LOG.addFilter(_QuietAbort())


def full_name(name: str) -> str:
    """Ollama's rule: a name without a tag means ``:latest``."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


@dataclass
class ModelSpec:
    """A model the server claims to have pulled."""

    name: str
    capabilities: tuple[str, ...] = ("completion", "thinking")
    family: str = "qwen3"
    parameter_size: str = "8.2B"
    quantization_level: str = "Q4_K_M"
    size: int = 5_225_376_047
    template: str = "{{ .Prompt }}"

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }


@dataclass
class Reply:
    """One scripted chat answer and the faults to play while streaming it.

    Build it with :meth:`from_pieces` (``(thinking, content)`` pieces, one per stream line) or
    :meth:`raw` (model text with ``<think>`` tags, cut at character offsets; a JSON string
    cannot carry half a UTF-8 sequence, and Ollama itself holds back incomplete ones).
    """

    pieces: list[Piece] = field(default_factory=list)
    text: str | None = None
    split_at: Sequence[int] | None = None
    prefilled: bool = False  # raw rendering omits the first <think> (template pre-fills it)
    first_token_delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    done_reason: str = "stop"
    disconnect_after: int | None = None  # drop the connection after N chunk lines
    omit_done: bool = False  # end the body cleanly without the done line
    inject: dict[int, str] = field(default_factory=dict)  # raw line sent before chunk i
    status: int | None = None  # answer with this HTTP status and {"error": error}
    error: str = "internal error"
    prompt_eval_count: int | None = None
    eval_count: int | None = None

    @classmethod
    def from_pieces(cls, pieces: Iterable[Piece], **faults: Any) -> Reply:
        return cls(pieces=list(pieces), **faults)

    @classmethod
    def raw(cls, text: str, split_at: Sequence[int] | None = None, **faults: Any) -> Reply:
        return cls(text=text, split_at=split_at, **faults)

    @classmethod
    def answer(
        cls, answer: str = DEFAULT_ANSWER, reasoning: str = DEFAULT_REASONING, **faults: Any
    ) -> Reply:
        """Reasoning then answer, a few words per line."""
        pieces = [(w, "") for w in _words(reasoning)] + [("", w) for w in _words(answer)]
        return cls(pieces=pieces, **faults)

    @classmethod
    def failing(cls, status: int, error: str) -> Reply:
        return cls(status=status, error=error)

    def raw_chunks(self) -> list[str]:
        """The model's text as it would stream without thinking support."""
        if self.text is not None:
            return _cut(self.text, self.split_at)
        chunks, in_think, opened = [], False, False
        for thinking, content in self.pieces:
            out = ""
            if thinking:
                if not in_think and not (self.prefilled and not opened):
                    out += OPEN
                in_think = opened = True
                out += thinking
            if content:
                if in_think:
                    out += CLOSE
                in_think = False
                out += content
            if out:
                chunks.append(out)
        return chunks

    def split_chunks(self) -> list[Piece]:
        """``(thinking, content)`` per line, as Ollama's thinking parser would produce them."""
        if self.text is None:
            return [p for p in self.pieces if p[0] or p[1]]
        labels = _label(self.text, self.prefilled)
        out: list[Piece] = []
        start = 0
        for chunk in _cut(self.text, self.split_at):
            marks = list(zip(chunk, labels[start : start + len(chunk)], strict=True))
            thinking = "".join(c for c, lab in marks if lab == "t")
            content = "".join(c for c, lab in marks if lab == "c")
            if thinking or content:
                out.append((thinking, content))
            start += len(chunk)
        return out


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+|\s+", text)


def _cut(text: str, split_at: Sequence[int] | None) -> list[str]:
    if split_at is None:
        return [t for t in re.findall(r"</?think>|\s*[^\s<]+|\s+|<", text) if t]
    bounds = [0, *sorted(set(i for i in split_at if 0 < i < len(text))), len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def _label(text: str, prefilled: bool) -> list[Literal["t", "c", "x"]]:
    """Per character: thinking, content or dropped (a tag or the whitespace after it)."""
    labels: list[Literal["t", "c", "x"]] = []
    stripped = text.lstrip()
    close_at, open_at = text.find(CLOSE), text.find(OPEN)
    in_think = prefilled or (
        not stripped.startswith(OPEN) and close_at >= 0 and (open_at < 0 or close_at < open_at)
    )
    seen_block, eat_ws, i = in_think, True, 0
    while i < len(text):
        if not seen_block and not in_think and text.startswith(OPEN, i) and not text[:i].strip():
            labels += ["x"] * len(OPEN)
            in_think = seen_block = eat_ws = True
            i += len(OPEN)
        elif in_think and text.startswith(CLOSE, i):
            labels += ["x"] * len(CLOSE)
            in_think, eat_ws = False, True
            i += len(CLOSE)
        else:
            if eat_ws and text[i].isspace():
                labels.append("x")
            else:
                eat_ws = False
                labels.append("t" if in_think else "c")
            i += 1
    return labels


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    body: Any
    received_at: float = field(default_factory=time.monotonic)
    finished: bool = False  # the whole response was sent
    disconnected: bool = False  # the client went away before the response ended


@dataclass
class Script:
    """What the server knows and how it answers; tests change it between calls."""

    models: dict[str, ModelSpec] = field(
        default_factory=lambda: {DEFAULT_MODEL: ModelSpec(DEFAULT_MODEL)}
    )
    default_reply: Reply = field(default_factory=Reply.answer)
    replies: deque[Reply] = field(default_factory=deque)
    version: str = "0.12.6"
    error_status: int | None = None  # every /api/* route answers this status
    error_message: str = "internal error"
    record_limit: int = 10_000

    @classmethod
    def instant(cls, answer: str = DEFAULT_ANSWER, reasoning: str = DEFAULT_REASONING) -> Script:
        """No delays, one reply for every request: for benchmarks."""
        return cls(default_reply=Reply.answer(answer, reasoning), record_limit=1_000)

    def add_model(self, name: str, *, thinking: bool = True, **spec: Any) -> ModelSpec:
        caps = ("completion", "thinking") if thinking else ("completion",)
        model = ModelSpec(full_name(name), capabilities=caps, **spec)
        self.models[model.name] = model
        return model

    def remove_model(self, name: str) -> None:
        self.models.pop(full_name(name), None)

    def push(self, *replies: Reply) -> None:
        """Queue replies for the next chat requests (then ``default_reply`` again)."""
        self.replies.extend(replies)

    def next_reply(self) -> Reply:
        try:
            return self.replies.popleft()
        except IndexError:
            return self.default_reply

    def find(self, name: str) -> ModelSpec | None:
        return self.models.get(full_name(name))


class OllamaApp:
    """The ASGI application; plain ASGI so the wire behaviour stays under our control."""

    def __init__(self, script: Script, recorder: Recorder) -> None:
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
        method, path = scope["method"], scope["path"]
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = self.recorder.add(RecordedRequest(method, path, body))
        await self.route(method, path, body, record, receive, send)

    async def route(
        self,
        method: str,
        path: str,
        body: Any,
        record: RecordedRequest,
        receive: Receive,
        send: Send,
    ) -> None:
        routes: dict[str, tuple[str, Callable[..., Awaitable[None]]]] = {
            "/": ("GET", self.root),
            "/api/version": ("GET", self.version),
            "/api/tags": ("GET", self.tags),
            "/api/show": ("POST", self.show),
            "/api/chat": ("POST", self.chat),
        }
        if path not in routes:
            await _send_text(send, 404, "404 page not found")
        elif routes[path][0] != method and not (method == "HEAD" and path == "/"):
            await _send_text(send, 405, "405 method not allowed")
        elif self.script.error_status is not None and path.startswith("/api/"):
            await _send_json(send, self.script.error_status, {"error": self.script.error_message})
        elif path == "/api/chat":
            if await self.chat(body, record, receive, send):
                self.recorder.changed()
                return  # the stream sets finished / disconnected itself
        else:
            await routes[path][1](body, send)
        record.finished = True
        self.recorder.changed()

    async def root(self, body: Any, send: Send) -> None:
        await _send_text(send, 200, "Ollama is running")

    async def version(self, body: Any, send: Send) -> None:
        await _send_json(send, 200, {"version": self.script.version})

    async def tags(self, body: Any, send: Send) -> None:
        models = [
            {
                "name": m.name,
                "model": m.name,
                "modified_at": "2026-11-01T10:00:00.000000000Z",
                "size": m.size,
                "digest": m.digest,
                "details": m.details(),
            }
            for m in self.script.models.values()
        ]
        await _send_json(send, 200, {"models": models})

    async def show(self, body: Any, send: Send) -> None:
        name = body.get("model") or body.get("name") if isinstance(body, dict) else None
        if not name:
            await _send_json(send, 400, {"error": "model is required"})
            return
        model = self.script.find(name)
        if model is None:
            await _send_json(send, 404, {"error": f"model '{name}' not found"})
            return
        await _send_json(
            send,
            200,
            {
                "modelfile": f"FROM {model.name}\n",
                "parameters": "temperature 0.6\ntop_p 0.95",
                "template": model.template,
                "details": model.details(),
                "model_info": {"general.architecture": model.family},
                "capabilities": list(model.capabilities),
                "modified_at": "2026-11-01T10:00:00.000000000Z",
            },
        )

    async def chat(self, body: Any, record: RecordedRequest, receive: Receive, send: Send) -> bool:
        """Answer a chat; False when it was refused with an error status."""
        if not isinstance(body, dict):
            await _send_json(send, 400, {"error": "invalid request body"})
            return False
        name = body.get("model")
        if not name:
            await _send_json(send, 400, {"error": "model is required"})
            return False
        model = self.script.find(name)
        if model is None:
            await _send_json(send, 404, {"error": f"model '{name}' not found"})
            return False
        think = body.get("think")
        thinks = "thinking" in model.capabilities
        if think is True and not thinks:
            await _send_json(send, 400, {"error": f'"{name}" does not support thinking'})
            return False
        reply = self.script.next_reply()
        if reply.status is not None:
            await _send_json(send, reply.status, {"error": reply.error})
            return False
        if think is True:
            pieces = reply.split_chunks()
        elif think is False and thinks:
            pieces = [("", c) for _, c in reply.split_chunks() if c]
        else:
            pieces = [("", c) for c in reply.raw_chunks()]
        await _Stream(name, body, reply, pieces, record, receive, send).run()
        return True


class _Stream:
    """Plays one chat reply, watching for the client going away."""

    def __init__(
        self,
        name: str,
        body: dict[str, Any],
        reply: Reply,
        pieces: list[Piece],
        record: RecordedRequest,
        receive: Receive,
        send: Send,
    ) -> None:
        self.name, self.body, self.reply, self.pieces = name, body, reply, pieces
        self.record, self.receive, self.send = record, receive, send
        self.gone = asyncio.Event()
        self.started = False
        self.t0 = time.perf_counter_ns()

    async def run(self) -> None:
        watcher = asyncio.create_task(self._watch())
        try:
            if self.body.get("stream", True):
                await self._stream()
            else:
                await self._single()
        except OSError:  # the client vanished mid-write
            self.record.disconnected = True
        finally:
            watcher.cancel()

    async def _watch(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self.gone.set()

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless the client leaves first; True when it left."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gone.wait(), seconds)
        if self.gone.is_set():
            self.record.disconnected = True
        return self.gone.is_set()

    async def _line(self, data: bytes) -> None:
        if not self.started:
            self.started = True
            await self.send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/x-ndjson")],
                }
            )
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def _stream(self) -> None:
        reply = self.reply
        if await self._pause(reply.first_token_delay_s):
            return
        first_token_ns = time.perf_counter_ns()
        for i, (thinking, content) in enumerate(self.pieces):
            if i and await self._pause(reply.chunk_delay_s):
                return
            if i in reply.inject:
                await self._line(reply.inject[i].encode() + b"\n")
            if reply.disconnect_after is not None and i >= reply.disconnect_after:
                return await self._abort()
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            await self._line(_encode({**self._head(), "message": message, "done": False}))
        if len(self.pieces) in reply.inject:
            await self._line(reply.inject[len(self.pieces)].encode() + b"\n")
        if reply.disconnect_after is not None:
            return await self._abort()
        if not reply.omit_done:
            final = {**self._head(), "message": {"role": "assistant", "content": ""}, "done": True}
            await self._line(_encode({**final, **self._stats(first_token_ns)}))
        if not self.started:
            await self._line(b"")
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})
        self.record.finished = True

    async def _abort(self) -> None:
        """Return without finishing the body: uvicorn then drops the connection mid-stream."""
        _ABORTING.set(True)
        if not self.started:
            await self._line(b"")

    async def _single(self) -> None:
        if await self._pause(self.reply.first_token_delay_s):
            return
        first_token_ns = time.perf_counter_ns()
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(c for _, c in self.pieces),
        }
        if thinking := "".join(t for t, _ in self.pieces):
            message["thinking"] = thinking
        payload = {**self._head(), "message": message, "done": True, **self._stats(first_token_ns)}
        await _send_json(self.send, 200, payload)
        self.record.finished = True

    def _head(self) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {"model": self.name, "created_at": now}

    def _stats(self, first_token_ns: int) -> dict[str, Any]:
        end = time.perf_counter_ns()
        words = sum(len(str(m.get("content", "")).split()) for m in self.body.get("messages", []))
        return {
            "done_reason": self.reply.done_reason,
            "total_duration": end - self.t0 + 1_000_000,
            "load_duration": 1_000_000,
            "prompt_eval_count": self.reply.prompt_eval_count or max(1, words),
            "prompt_eval_duration": first_token_ns - self.t0,
            "eval_count": self.reply.eval_count or len(self.pieces),
            "eval_duration": end - first_token_ns,
        }


def _encode(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


async def _send_json(send: Send, status: int, payload: Any) -> None:
    data = json.dumps(payload, ensure_ascii=False).encode()
    await _send_bytes(send, status, data, b"application/json; charset=utf-8")


async def _send_text(send: Send, status: int, text: str) -> None:
    await _send_bytes(send, status, text.encode(), b"text/plain; charset=utf-8")


async def _send_bytes(send: Send, status: int, data: bytes, ctype: bytes) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class Recorder:
    """Thread-safe log of received requests (the server writes, the test reads)."""

    def __init__(self, limit: int) -> None:
        self._items: deque[RecordedRequest] = deque(maxlen=limit)
        self._cond = threading.Condition()

    def add(self, record: RecordedRequest) -> RecordedRequest:
        with self._cond:
            self._items.append(record)
            self._cond.notify_all()
        return record

    def changed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def snapshot(self) -> list[RecordedRequest]:
        with self._cond:
            return list(self._items)

    def clear(self) -> None:
        with self._cond:
            self._items.clear()

    def wait_for(self, predicate: Callable[[list[RecordedRequest]], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(list(self._items)), timeout)

    def settled(self, path: str, timeout: float = 5.0) -> list[RecordedRequest]:
        """The requests to ``path`` once each has finished or seen its client leave.

        The client can read the last byte before the server's task marks the request
        finished, so a test that checks ``finished`` right after a response waits here.
        """
        self.wait_for(
            lambda rs: all(r.finished or r.disconnected for r in rs if r.path == path), timeout
        )
        return [r for r in self.snapshot() if r.path == path]


class OllamaTestServer:
    """A running server: its URL, its script, and what it received."""

    def __init__(self, script: Script | None = None, host: str = "127.0.0.1", port: int = 0):
        self.script = script or Script()
        self.recorder = Recorder(self.script.record_limit)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(
            OllamaApp(self.script, self.recorder),
            log_config=None,
            log_level="error",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._sock])),
            name=f"ollama-test-server:{self.port}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> OllamaTestServer:
        if self._thread.is_alive():
            return self
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Ollama test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._server.force_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> OllamaTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.recorder.snapshot()

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/api/chat"]

    def settled_chat_requests(self, timeout: float = 5.0) -> list[RecordedRequest]:
        """The chat requests once every one has finished or been abandoned."""
        return self.recorder.settled("/api/chat", timeout)

    def reset(self) -> None:
        """Forget recorded requests and queued replies."""
        self.recorder.clear()
        self.script.replies.clear()

    def wait_for_disconnect(self, timeout: float = 5.0) -> bool:
        """True once some chat request saw its client leave before the stream ended."""
        return self.recorder.wait_for(lambda rs: any(r.disconnected for r in rs), timeout)

    def wait_for_requests(self, count: int, path: str = "/api/chat", timeout: float = 5.0) -> bool:
        return self.recorder.wait_for(lambda rs: sum(r.path == path for r in rs) >= count, timeout)


def start_server(
    script: Script | None = None, host: str = "127.0.0.1", port: int = 0
) -> OllamaTestServer:
    """Start a server on a free (or the given) port; stop it with ``.stop()`` or ``with``."""
    return OllamaTestServer(script, host, port).start()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted, answering every chat with the default reply."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    script = Script.instant()
    script.models = {}
    script.add_model(args.model)
    with start_server(script, args.host, args.port) as server:
        sys.stderr.write(f"Ollama test server on {server.url} serving {args.model}\n")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
