"""OpenAIBackend against the real OpenAI-protocol test server: three reasoning styles, faults."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
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
from service.llm.openai_compat import OpenAIBackend, ThinkTags
from service.settings import ServiceSettings, TimeoutSettings
from tests.service.ollama_server import DEFAULT_ANSWER, DEFAULT_REASONING, Reply
from tests.service.openai_server import OpenAIScript, OpenAITestServer, start_openai_server

pytestmark = pytest.mark.anyio

MODEL = "deepseek-r1:8b"
QUESTION = [ChatMessage("user", "Context: ...\n\nQuestion: hello?")]
STYLES = ["reasoning_content", "reasoning", "raw"]


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    srv = start_openai_server(OpenAIScript())
    try:
        yield srv
    finally:
        srv.stop()


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
    server: OpenAITestServer | str,
    model: str = MODEL,
    *,
    first_token_s: float = 5.0,
    total_s: float = 20.0,
    think_tags: ThinkTags = "auto",
    api_key: str | None = None,
) -> OpenAIBackend:
    url = server if isinstance(server, str) else server.base_url
    timeouts = TimeoutSettings(connect_s=2.0, first_token_s=first_token_s, total_s=total_s)
    return OpenAIBackend(
        base_url=url, model=model, timeouts=timeouts, think_tags=think_tags, api_key=api_key
    )


async def chat(
    backend: OpenAIBackend,
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


@pytest.mark.parametrize("style", STYLES)
async def test_three_reasoning_styles(server: OpenAITestServer, style: str) -> None:
    server.script.reasoning_style = style  # type: ignore[assignment]
    history = [ChatMessage("user", "Earlier"), ChatMessage("assistant", "Before"), *QUESTION]
    out = await chat(
        make_backend(server), options=GenerationOptions(max_tokens=99), messages=history
    )
    assert out.reasoning.strip() == DEFAULT_REASONING
    assert out.answer == DEFAULT_ANSWER
    assert not any("think>" in d.text for d in out.deltas)
    assert out.done is not None
    assert (out.done.model, out.done.finish_reason) == (MODEL, "stop")
    assert out.done.prompt_tokens > 0 and out.done.completion_tokens > 0
    assert 0 < out.done.timings_ms["first_token"] <= out.done.timings_ms["wall"]
    (request,) = await asyncio.to_thread(server.settled_chat_requests)
    assert request.body["stream"] is True and request.body["model"] == MODEL
    assert request.body["temperature"] == 0.6 and request.body["max_tokens"] == 99
    assert request.body["messages"][1] == {"role": "assistant", "content": "Before"}
    assert request.finished and not request.disconnected


@pytest.mark.parametrize("style", ["reasoning_content", "reasoning"])
async def test_structured_reasoning_streams_before_answer(
    server: OpenAITestServer, style: str
) -> None:
    server.script.reasoning_style = style  # type: ignore[assignment]
    out = await chat(make_backend(server))
    kinds = [d.kind for d in out.deltas]
    assert kinds == sorted(kinds, key=lambda k: k == "answer")
    assert kinds.count("reasoning") > 1 and kinds.count("answer") > 1  # streamed, not buffered
    assert out.done is not None and out.done.reasoning_chars == len(DEFAULT_REASONING)


@pytest.mark.parametrize("split_at", [None, [3, 12, 40, 45], list(range(1, 70))])
async def test_raw_tags_split_anywhere(
    server: OpenAITestServer, split_at: list[int] | None
) -> None:
    server.script.reasoning_style = "raw"
    text = "<think>\nThe user asks when.\n</think>\n\nOn Monday, at <b>9</b>."
    server.script.push(Reply.raw(text, split_at=split_at))
    out = await chat(make_backend(server))
    assert (out.reasoning, out.answer) == ("The user asks when.\n", "On Monday, at <b>9</b>.")


async def test_raw_prefilled_template(server: OpenAITestServer) -> None:
    server.script.reasoning_style = "raw"
    server.script.push(Reply.raw("Okay, the date.\n</think>\n\nIt is Monday.", split_at=[5, 20]))
    out = await chat(make_backend(server))
    assert (out.reasoning, out.answer) == ("Okay, the date.\n", "It is Monday.")


@pytest.mark.parametrize("think_tags", ["auto", "answer_first"])
async def test_model_without_reasoning(server: OpenAITestServer, think_tags: ThinkTags) -> None:
    server.script.reasoning_style = "raw"
    server.script.push(Reply.raw("Plain answer, no reasoning at all."))
    out = await chat(make_backend(server, think_tags=think_tags))
    assert (out.reasoning, out.answer) == ("", "Plain answer, no reasoning at all.")
    # answer_first streams piece by piece; auto must hold the text until it knows
    assert len(out.deltas) == (1 if think_tags == "auto" else 6)


async def test_structured_server_with_stray_tags_in_content(server: OpenAITestServer) -> None:
    server.script.push(Reply.from_pieces([("r", ""), ("", "<think>x</think>"), ("", "Answer")]))
    out = await chat(make_backend(server))
    assert (out.reasoning, out.answer) == ("rx", "Answer")


@pytest.mark.parametrize("style", STYLES)
async def test_truncated_while_reasoning(server: OpenAITestServer, style: str) -> None:
    server.script.reasoning_style = style  # type: ignore[assignment]
    pieces = [("Let me", ""), (" think about", ""), (" this", "")]
    server.script.push(Reply.from_pieces(pieces, done_reason="length"))
    out = Outcome()
    with pytest.raises(NoAnswer, match="token limit"):
        await chat(make_backend(server), out)
    assert out.reasoning == "Let me think about this"  # delivered before the error
    assert out.answer == "" and out.done is None


async def test_unclosed_reasoning_is_no_answer(server: OpenAITestServer) -> None:
    server.script.reasoning_style = "raw"
    server.script.push(Reply.raw("<think>I keep thinking and"))
    out = Outcome()
    with pytest.raises(NoAnswer, match="never closed"):
        await chat(make_backend(server), out)
    assert out.reasoning == "I keep thinking and"


async def test_truncated_answer_finishes_with_length(server: OpenAITestServer) -> None:
    server.script.push(Reply.from_pieces([("r", ""), ("", "Partial an")], done_reason="length"))
    out = await chat(make_backend(server))
    assert out.answer == "Partial an"
    assert out.done is not None and out.done.finish_reason == "length"


async def test_empty_answer_is_no_answer(server: OpenAITestServer) -> None:
    server.script.push(Reply.from_pieces([("only reasoning", "")]))
    with pytest.raises(NoAnswer, match="empty answer"):
        await chat(make_backend(server))


async def test_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connection refused
        backend = make_backend(f"http://127.0.0.1:{port}/v1")
        with pytest.raises(ModelUnavailable) as info:
            await chat(backend)
        health = await make_backend(f"http://127.0.0.1:{port}/v1").health()
    assert info.value.code == "model_unavailable" and info.value.status == 503
    assert not health.reachable and not health.model_present


async def test_missing_model(server: OpenAITestServer) -> None:
    with pytest.raises(ModelMissing, match="not served") as info:
        await chat(make_backend(server, model="llama-70b"))
    assert info.value.code == "model_missing"
    health = await make_backend(server, model="llama-70b").health()
    assert health.reachable and not health.model_present and "llama-70b" in health.detail
    healthy = await make_backend(server).health()
    assert healthy.reachable and healthy.model_present


async def test_wrong_base_url_is_unavailable(server: OpenAITestServer) -> None:
    root = server.base_url.removesuffix("/v1")
    with pytest.raises(ModelUnavailable, match="/v1"):
        await chat(make_backend(root))


async def test_api_key(server: OpenAITestServer) -> None:
    server.script.api_key = "s3cret"
    with pytest.raises(ModelUnavailable, match="API key"):
        await chat(make_backend(server))
    assert not (await make_backend(server).health()).model_present
    out = await chat(make_backend(server, api_key="s3cret"))
    assert out.answer == DEFAULT_ANSWER
    assert server.chat_requests()[-1].headers["authorization"] == "Bearer s3cret"  # type: ignore[attr-defined]


async def test_first_token_timeout_and_cancel(server: OpenAITestServer) -> None:
    # The first token would come after a minute: only the 0.3 s timeout can end this.
    server.script.push(Reply.answer(first_token_delay_s=60))
    with pytest.raises(ModelTimeout, match="first token") as info:
        await chat(make_backend(server, first_token_s=0.3))
    assert info.value.code == "model_timeout" and info.value.status == 504
    assert await asyncio.to_thread(server.wait_for_disconnect, 60)  # the server saw us leave


async def test_total_timeout(server: OpenAITestServer) -> None:
    # one piece at once, the next after a minute: the 3 s total limit falls between them
    server.script.push(Reply.answer(chunk_delay_s=60))
    with pytest.raises(ModelTimeout, match="generating"):
        await chat(make_backend(server, first_token_s=3, total_s=3))
    assert await asyncio.to_thread(server.wait_for_disconnect, 60)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply.answer(disconnect_after=3), ModelProtocolError),  # connection dropped
        (Reply.answer(omit_done=True), ModelProtocolError),  # body ends without finish/[DONE]
        (Reply.answer(inject={2: "data: {not json"}), ModelProtocolError),
        (Reply.answer(inject={2: "garbage line"}), ModelProtocolError),
        (Reply.answer(inject={2: 'data: {"choices": "x"}'}), ModelProtocolError),
        (Reply.answer(inject={2: 'data: {"error": {"message": "OOM"}}'}), ModelError),
        (Reply.failing(500, "kaboom"), ModelError),
        (Reply.failing(503, "loading"), ModelUnavailable),
    ],
)
async def test_bad_streams(server: OpenAITestServer, reply: Reply, error: type[ModelError]) -> None:
    server.script.push(reply)
    with pytest.raises(error) as info:
        await chat(make_backend(server))
    assert type(info.value) is error


async def test_keepalive_comments_and_extra_fields_are_fine(server: OpenAITestServer) -> None:
    server.script.push(Reply.answer(inject={0: ": ping", 3: "event: message"}))
    out = await chat(make_backend(server))
    assert out.answer == DEFAULT_ANSWER


async def test_consumer_break_closes_the_request(server: OpenAITestServer) -> None:
    server.script.push(Reply.answer(chunk_delay_s=0.05))
    backend = make_backend(server)
    stream = backend.stream_chat(QUESTION, GenerationOptions())
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    await backend.aclose()
    assert server.wait_for_disconnect()


async def test_concurrent_streams(server: OpenAITestServer) -> None:
    backend = make_backend(server)
    try:
        outs = await asyncio.gather(*(_collect(backend) for _ in range(8)))
    finally:
        await backend.aclose()
    assert all(answer == DEFAULT_ANSWER for answer in outs)


async def _collect(backend: OpenAIBackend) -> str:
    parts = []
    async for item in backend.stream_chat(QUESTION, GenerationOptions()):
        if isinstance(item, ModelDelta) and item.kind == "answer":
            parts.append(item.text)
    return "".join(parts)


def test_settings_and_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INHOUSE_BACKEND", "openai")
    monkeypatch.setenv("INHOUSE_OPENAI__BASE_URL", "http://10.0.0.5:8000/v1/")
    monkeypatch.setenv("INHOUSE_OPENAI__API_KEY", "sk-local-123")
    monkeypatch.setenv("INHOUSE_MODEL", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")
    settings = ServiceSettings()
    assert settings.openai.base_url == "http://10.0.0.5:8000/v1"
    assert "sk-local-123" not in repr(settings.openai)  # the key stays secret
    backend = OpenAIBackend.from_settings(settings)
    assert backend.model == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert backend.base_url == "http://10.0.0.5:8000/v1"
    with pytest.raises(ValueError, match="http"):
        ServiceSettings(openai={"base_url": "ftp://x"})
