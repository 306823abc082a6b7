"""OllamaBackend against the real Ollama test server: happy paths and every fault."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field

import pytest

from service.errors import (
    ModelError,
    ModelMissing,
    ModelProtocolError,
    ModelTimeout,
    ModelUnavailable,
    NoAnswer,
)
from service.llm.base import ChatMessage, GenerationOptions, ModelDelta, ModelDone
from service.llm.factory import build_backend, generation_options
from service.llm.ollama import OllamaBackend
from service.settings import ServiceSettings, TimeoutSettings
from tests.service.ollama_server import DEFAULT_ANSWER, DEFAULT_REASONING, OllamaTestServer, Reply

pytestmark = pytest.mark.anyio

MODEL = "deepseek-r1:8b"
RAW_MODEL = "r1-raw:7b"  # a model without the thinking capability: raw <think> tags
QUESTION = [ChatMessage("user", "Context: ...\n\nQuestion: hello?")]


@dataclass
class Outcome:
    deltas: list[ModelDelta] = field(default_factory=list)
    done: ModelDone | None = None

    @property
    def answer(self) -> str:
        return "".join(d.text for d in self.deltas if d.kind == "answer")

    @property
    def reasoning(self) -> str:
        return "".join(d.text for d in self.deltas if d.kind == "reasoning")


def make_backend(
    server: OllamaTestServer | str,
    model: str = MODEL,
    connect_s: float = 2.0,
    first_token_s: float = 5.0,
    total_s: float = 20.0,
) -> OllamaBackend:
    host = server if isinstance(server, str) else server.url
    timeouts = TimeoutSettings(connect_s=connect_s, first_token_s=first_token_s, total_s=total_s)
    return OllamaBackend(host=host, model=model, timeouts=timeouts)


async def chat(
    backend: OllamaBackend,
    outcome: Outcome | None = None,
    options: GenerationOptions | None = None,
    messages: list[ChatMessage] | None = None,
) -> Outcome:
    outcome = outcome or Outcome()
    try:
        async for item in backend.stream_chat(messages or QUESTION, options or GenerationOptions()):
            if isinstance(item, ModelDone):
                assert outcome.done is None, "more than one ModelDone"
                outcome.done = item
            else:
                assert outcome.done is None, "delta after ModelDone"
                assert item.text, "empty delta"
                outcome.deltas.append(item)
    finally:
        await backend.aclose()
    return outcome


def raw_model(server: OllamaTestServer) -> None:
    server.script.add_model(RAW_MODEL, thinking=False)


async def test_thinking_field_and_request_shape(ollama_server: OllamaTestServer) -> None:
    history = [
        ChatMessage("user", "Earlier question"),
        ChatMessage("assistant", "Earlier answer"),
        *QUESTION,
    ]
    options = GenerationOptions(temperature=0.6, max_tokens=512)
    out = await chat(make_backend(ollama_server), options=options, messages=history)
    assert out.reasoning == DEFAULT_REASONING
    assert out.answer == DEFAULT_ANSWER
    assert out.done is not None
    assert (out.done.model, out.done.finish_reason) == (MODEL, "stop")
    assert out.done.completion_tokens == len(Reply.answer().pieces)
    assert out.done.prompt_tokens > 0
    assert out.done.reasoning_chars == len(DEFAULT_REASONING)
    assert {"total", "load", "prompt_eval", "eval", "first_token", "wall"} <= set(
        out.done.timings_ms
    )
    assert out.done.timings_ms["load"] == pytest.approx(1.0)
    (request,) = await asyncio.to_thread(ollama_server.settled_chat_requests)
    body = request.body
    assert body["model"] == MODEL and body["stream"] is True and body["think"] is True
    assert body["options"] == {"temperature": 0.6, "num_predict": 512, "num_ctx": 8192}
    assert body["messages"] == [
        {"role": "user", "content": "Earlier question"},
        {"role": "assistant", "content": "Earlier answer"},
        {"role": "user", "content": QUESTION[0].content},
    ]
    assert request.finished and not request.disconnected


async def test_reasoning_streams_before_answer(ollama_server: OllamaTestServer) -> None:
    out = await chat(make_backend(ollama_server))
    kinds = [d.kind for d in out.deltas]
    assert kinds == sorted(kinds, key=lambda k: k == "answer")  # all reasoning, then all answer
    assert kinds.count("reasoning") > 1 and kinds.count("answer") > 1  # streamed, not buffered


async def test_think_false_drops_reasoning(ollama_server: OllamaTestServer) -> None:
    out = await chat(make_backend(ollama_server), options=GenerationOptions(think=False))
    assert (out.answer, out.reasoning) == (DEFAULT_ANSWER, "")
    assert ollama_server.chat_requests()[0].body["think"] is False


@pytest.mark.parametrize(
    "split_at",
    [
        None,  # token-like pieces
        [3, 12, 40, 45],  # inside both tags
        list(range(1, 80)),  # one character per line
        [7, 9, 10, 38, 39],
    ],
)
async def test_raw_tags_split_anywhere(
    ollama_server: OllamaTestServer, split_at: list[int] | None
) -> None:
    raw_model(ollama_server)
    text = "<think>\nThe user asks when.\n</think>\n\nOn Monday, at <b>9</b>."
    ollama_server.script.push(Reply.raw(text, split_at=split_at))
    out = await chat(make_backend(ollama_server, model=RAW_MODEL))
    assert out.reasoning == "The user asks when.\n"
    assert out.answer == "On Monday, at <b>9</b>."
    assert not any("think>" in d.text for d in out.deltas)
    assert "think" not in ollama_server.chat_requests()[0].body  # never sent to such a model


async def test_raw_missing_opening_tag(ollama_server: OllamaTestServer) -> None:
    raw_model(ollama_server)
    ollama_server.script.push(
        Reply.raw("Okay, the user wants the date.\n</think>\n\nIt is Monday.", split_at=[5, 34])
    )
    out = await chat(make_backend(ollama_server, model=RAW_MODEL))
    assert (out.reasoning, out.answer) == ("Okay, the user wants the date.\n", "It is Monday.")


async def test_raw_without_tags_is_all_answer(ollama_server: OllamaTestServer) -> None:
    raw_model(ollama_server)
    ollama_server.script.push(Reply.raw("Plain answer, no reasoning."))
    out = await chat(make_backend(ollama_server, model=RAW_MODEL))
    assert (out.reasoning, out.answer) == ("", "Plain answer, no reasoning.")


async def test_thinking_model_given_raw_tags_in_content(ollama_server: OllamaTestServer) -> None:
    """Stray tags in content (a server that did not parse them) still never reach the answer."""
    ollama_server.script.push(Reply.from_pieces([("", "<think>x</think>"), ("", "Answer")]))
    out = await chat(make_backend(ollama_server))
    assert (out.reasoning, out.answer) == ("x", "Answer")


@pytest.mark.parametrize("raw", [False, True])
async def test_truncated_while_reasoning(ollama_server: OllamaTestServer, raw: bool) -> None:
    if raw:
        raw_model(ollama_server)
    pieces = [("Let me", ""), (" think about", ""), (" this", "")]
    ollama_server.script.push(Reply.from_pieces(pieces, done_reason="length"))
    out = Outcome()
    with pytest.raises(NoAnswer, match="token limit"):
        await chat(make_backend(ollama_server, model=RAW_MODEL if raw else MODEL), out)
    assert out.reasoning == "Let me think about this"  # delivered before the error
    assert out.answer == "" and out.done is None


async def test_truncated_answer_finishes_with_length(ollama_server: OllamaTestServer) -> None:
    ollama_server.script.push(
        Reply.from_pieces([("r", ""), ("", "Partial an")], done_reason="length")
    )
    out = await chat(make_backend(ollama_server))
    assert out.answer == "Partial an"
    assert out.done is not None and out.done.finish_reason == "length"


async def test_unclosed_reasoning_is_no_answer(ollama_server: OllamaTestServer) -> None:
    raw_model(ollama_server)
    ollama_server.script.push(Reply.raw("<think>I keep thinking and"))
    out = Outcome()
    with pytest.raises(NoAnswer, match="never closed"):
        await chat(make_backend(ollama_server, model=RAW_MODEL), out)
    assert out.reasoning == "I keep thinking and"


async def test_empty_answer_is_no_answer(ollama_server: OllamaTestServer) -> None:
    ollama_server.script.push(Reply.from_pieces([("only thoughts", ""), ("", "  \n")]))
    with pytest.raises(NoAnswer, match="empty answer") as info:
        await chat(make_backend(ollama_server))
    assert info.value.code == "no_answer"


async def test_slow_first_token_times_out_and_hangs_up(ollama_server: OllamaTestServer) -> None:
    # The first token would come after a minute: only the 0.3 s timeout can raise this, and
    # the server sees the client leave while it is still waiting to send it.
    ollama_server.script.push(Reply.answer(first_token_delay_s=60))
    with pytest.raises(ModelTimeout, match="first token") as info:
        await chat(make_backend(ollama_server, first_token_s=0.3))
    assert info.value.status == 504
    assert await asyncio.to_thread(ollama_server.wait_for_disconnect, 60)
    (request,) = ollama_server.chat_requests()
    assert request.disconnected and not request.finished


async def test_total_timeout_mid_stream(ollama_server: OllamaTestServer) -> None:
    # The first piece comes at once, the next after a minute: the 3 s total limit ends the
    # stream between the two, however slow this machine is (3 s to get one piece is ample).
    ollama_server.script.push(Reply.answer(chunk_delay_s=60))
    out = Outcome()
    with pytest.raises(ModelTimeout, match="generating"):
        await chat(make_backend(ollama_server, first_token_s=3, total_s=3), out)
    assert len(out.deltas) == 1
    assert await asyncio.to_thread(ollama_server.wait_for_disconnect, 60)


async def test_abrupt_disconnect_is_protocol_error(ollama_server: OllamaTestServer) -> None:
    ollama_server.script.push(Reply.answer(disconnect_after=4))
    out = Outcome()
    with pytest.raises(ModelProtocolError, match="broke the response"):
        await chat(make_backend(ollama_server), out)
    assert out.reasoning == "The user greets me."


@pytest.mark.parametrize("line", ["<html>502 Bad Gateway</html>", '{"foo": 1}', "[1, 2]"])
async def test_garbage_line_is_protocol_error(ollama_server: OllamaTestServer, line: str) -> None:
    ollama_server.script.push(Reply.answer(inject={3: line}))
    out = Outcome()
    with pytest.raises(ModelProtocolError, match="malformed"):
        await chat(make_backend(ollama_server), out)
    assert out.reasoning == "The user greets"


async def test_error_line_mid_stream(ollama_server: OllamaTestServer) -> None:
    ollama_server.script.push(Reply.answer(inject={2: '{"error":"CUDA out of memory"}'}))
    with pytest.raises(ModelError, match="CUDA out of memory") as info:
        await chat(make_backend(ollama_server))
    assert info.value.code == "model_error"


async def test_stream_without_done_line(ollama_server: OllamaTestServer) -> None:
    ollama_server.script.push(Reply.answer(omit_done=True))
    out = Outcome()
    with pytest.raises(ModelProtocolError, match="done"):
        await chat(make_backend(ollama_server), out)
    assert out.answer == DEFAULT_ANSWER and out.done is None


async def test_model_missing(ollama_server: OllamaTestServer) -> None:
    ollama_server.script.remove_model(MODEL)
    with pytest.raises(ModelMissing, match=f"ollama pull {MODEL}") as info:
        await chat(make_backend(ollama_server))
    assert info.value.status == 503
    health = await make_backend(ollama_server).health()
    assert health.reachable and not health.model_present
    assert f"ollama pull {MODEL}" in health.detail


async def test_model_missing_on_chat_after_cached_capabilities(
    ollama_server: OllamaTestServer,
) -> None:
    backend = make_backend(ollama_server)
    assert "thinking" in await backend.capabilities()
    ollama_server.script.remove_model(MODEL)  # deleted between requests
    with pytest.raises(ModelMissing):
        await chat(backend)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_server_down() -> None:
    url = closed_port_url()
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match="cannot connect") as info:
        await chat(make_backend(url, first_token_s=300, total_s=600))
    # A refused connection is reported at once, not retried until a timeout (300 s here); the
    # 60 s bound is only that wide so a loaded machine cannot fail it.
    assert time.monotonic() - started < 60
    assert info.value.code == "model_unavailable"
    health = await make_backend(url).health()
    assert not health.reachable and not health.model_present
    assert url in health.detail


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (500, "llama runner process has terminated", ModelError),
        (
            503,
            "server busy, please try again.  maximum pending requests exceeded",
            ModelUnavailable,
        ),
        (400, "invalid options", ModelError),
    ],
)
async def test_http_error_status(
    ollama_server: OllamaTestServer, status: int, error: str, expected: type[ModelError]
) -> None:
    ollama_server.script.push(Reply.failing(status, error))
    with pytest.raises(expected) as info:
        await chat(make_backend(ollama_server))
    assert type(info.value) is expected
    assert error in (info.value.message + str(info.value.detail))


async def test_not_an_ollama_server(ollama_server: OllamaTestServer) -> None:
    with pytest.raises(ModelUnavailable, match="Ollama server"):
        await chat(make_backend(ollama_server.url + "/elsewhere"))


async def test_aclose_hangs_up_on_the_server(ollama_server: OllamaTestServer) -> None:
    ollama_server.script.push(Reply.answer(chunk_delay_s=0.3))
    backend = make_backend(ollama_server)
    stream = backend.stream_chat(QUESTION, GenerationOptions())
    first = await anext(stream)  # type: ignore[arg-type]
    assert first == ModelDelta("reasoning", "The")
    await stream.aclose()  # type: ignore[attr-defined]
    assert await asyncio.to_thread(ollama_server.wait_for_disconnect, 5)
    (request,) = ollama_server.chat_requests()
    assert request.disconnected and not request.finished
    await backend.aclose()


async def test_task_cancel_hangs_up_on_the_server(ollama_server: OllamaTestServer) -> None:
    ollama_server.script.push(Reply.answer(chunk_delay_s=60))  # one piece, then nothing
    backend = make_backend(ollama_server)
    got: list[ModelDelta | ModelDone] = []
    first = asyncio.Event()

    async def consume() -> None:
        async for item in backend.stream_chat(QUESTION, GenerationOptions()):
            got.append(item)
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(got) == 1
    assert await asyncio.to_thread(ollama_server.wait_for_disconnect, 60)
    (request,) = ollama_server.chat_requests()
    assert request.disconnected and not request.finished
    await backend.aclose()


async def test_capabilities_are_cached(ollama_server: OllamaTestServer) -> None:
    backend = make_backend(ollama_server)
    for _ in range(3):
        stream = backend.stream_chat(QUESTION, GenerationOptions())
        assert [i async for i in stream][-1].__class__ is ModelDone
    assert sum(r.path == "/api/show" for r in ollama_server.requests) == 1
    await backend.aclose()


async def test_health_ok(ollama_server: OllamaTestServer) -> None:
    backend = make_backend(ollama_server)
    health = await backend.health()
    await backend.aclose()
    assert health.reachable and health.model_present and health.model == MODEL
    assert health.capabilities == ("completion", "thinking")
    assert "0.12.6" in health.detail


async def test_concurrent_streams(ollama_server: OllamaTestServer) -> None:
    """Four streams are open at once: each holds its stream open after its first piece until
    all four have one (a backend that serialised requests would never get there)."""
    backend = make_backend(ollama_server)
    all_open = asyncio.Barrier(4)
    outs = await asyncio.gather(*(chat_keep_open(backend, all_open) for _ in range(4)))
    await backend.aclose()
    assert all(o.answer == DEFAULT_ANSWER for o in outs)


async def chat_keep_open(
    backend: OllamaBackend, all_open: asyncio.Barrier | None = None
) -> Outcome:
    out = Outcome()
    async for item in backend.stream_chat(QUESTION, GenerationOptions()):
        if all_open is not None and not out.deltas:
            await asyncio.wait_for(all_open.wait(), 60)
        if isinstance(item, ModelDone):
            out.done = item
        else:
            out.deltas.append(item)
    return out


def test_factory_builds_from_settings() -> None:
    settings = ServiceSettings(
        model="m:1", ollama_host="127.0.0.1:9", temperature=0.5, max_tokens=64
    )
    backend = build_backend(settings)
    assert isinstance(backend, OllamaBackend) and backend.model == "m:1"
    assert generation_options(settings) == GenerationOptions(temperature=0.5, max_tokens=64)
    asyncio.run(backend.aclose())
    other = build_backend(ServiceSettings(backend="openai", model="r1"))
    assert type(other).__name__ == "OpenAIBackend" and other.model == "r1"
    asyncio.run(other.aclose())
