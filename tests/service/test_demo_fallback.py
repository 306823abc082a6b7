"""DemoFallbackBackend routing: the configured Ollama when it can answer, else the demo model.

The "demo model" here is the OpenAI-protocol test server behind a real OpenAIBackend (the
real llama.cpp path is tests/service/test_local_model_integration.py); Ollama is the Ollama
test server, added and removed to play a server that comes and goes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.errors import ModelUnavailable
from service.llm import local_model
from service.llm.base import ChatBackend, ChatMessage, GenerationOptions, ModelDelta, ModelDone
from service.llm.demo_fallback import DemoFallbackBackend
from service.llm.factory import build_backend
from service.llm.ollama import OllamaBackend
from service.llm.openai_compat import OpenAIBackend
from service.settings import ServiceSettings, TimeoutSettings
from tests.service.ollama_server import OllamaTestServer, Reply
from tests.service.openai_server import OpenAIScript, OpenAITestServer, start_openai_server

pytestmark = pytest.mark.anyio

QUESTION = [ChatMessage("user", "Sources: ...\n\nQuestion: when?")]
TIMEOUTS = TimeoutSettings(connect_s=1, first_token_s=5, total_s=10)


class FakeLauncher:
    """Runs the 'demo model': an OpenAIBackend on the OpenAI test server, labelled as demo."""

    def __init__(self, server: OpenAITestServer, available: bool = True) -> None:
        self.server = server
        self.is_available = available
        self.starts = 0
        self.stops = 0
        self._running = False

    def available(self) -> bool:
        return self.is_available

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> ChatBackend:
        self.starts += 1
        self._running = True
        return OpenAIBackend(
            base_url=self.server.base_url,
            model="gemma3-270m",
            timeouts=TIMEOUTS,
            think_tags="answer_first",
            label=local_model.DEMO_MODEL_LABEL,
        )

    async def stop(self) -> None:
        self.stops += 1
        self._running = False


@pytest.fixture
def demo_server() -> Iterator[OpenAITestServer]:
    script = OpenAIScript(models=["gemma3-270m"], reasoning_style="raw")
    script.default_reply = Reply.raw("The demo says: Monday [1].")
    server = start_openai_server(script)
    try:
        yield server
    finally:
        server.stop()


def make(
    ollama_url: str, launcher: FakeLauncher, use: str = "auto", recheck_s: float = 10.0
) -> DemoFallbackBackend:
    settings = ServiceSettings(ollama_host=ollama_url, demo_model={"use": use})
    primary = OllamaBackend(host=settings.ollama_host, model=settings.model, timeouts=TIMEOUTS)
    return DemoFallbackBackend(primary, settings, launcher=launcher, recheck_s=recheck_s)


async def ask(backend: DemoFallbackBackend) -> tuple[str, ModelDone]:
    parts, done = [], None
    async for item in backend.stream_chat(QUESTION, GenerationOptions()):
        if isinstance(item, ModelDelta) and item.kind == "answer":
            parts.append(item.text)
        elif isinstance(item, ModelDone):
            done = item
    assert done is not None
    return "".join(parts), done


async def test_primary_answers_when_it_can(
    ollama_server: OllamaTestServer, demo_server: OpenAITestServer
) -> None:
    launcher = FakeLauncher(demo_server)
    backend = make(ollama_server.url, launcher)
    try:
        answer, done = await ask(backend)
        health = await backend.health()
    finally:
        await backend.aclose()
    assert done.model == "deepseek-r1:8b" and answer.startswith("Hello")
    assert health.model_present and health.model == "deepseek-r1:8b"
    assert launcher.starts == 0 and not demo_server.chat_requests()


async def test_demo_model_answers_when_ollama_is_down(demo_server: OpenAITestServer) -> None:
    launcher = FakeLauncher(demo_server)
    backend = make("http://127.0.0.1:9", launcher)
    try:
        first = await ask(backend)
        second = await ask(backend)
        health = await backend.health()
        model = backend.model
    finally:
        await backend.aclose()
    assert first[0] == second[0] == "The demo says: Monday [1]."
    assert first[1].model == local_model.DEMO_MODEL_LABEL == model
    assert launcher.starts == 1 and launcher.stops == 1  # started once, stopped on close
    assert health.reachable and health.model_present
    assert health.model == local_model.DEMO_MODEL_LABEL and "demo model" in health.detail


async def test_missing_model_also_falls_back_and_recovers(
    ollama_server: OllamaTestServer, demo_server: OpenAITestServer
) -> None:
    ollama_server.script.remove_model("deepseek-r1:8b")
    launcher = FakeLauncher(demo_server)
    backend = make(ollama_server.url, launcher, recheck_s=0.0)
    try:
        assert (await ask(backend))[1].model == local_model.DEMO_MODEL_LABEL
        ollama_server.script.add_model("deepseek-r1:8b")  # `ollama pull` finished
        assert (await ask(backend))[1].model == "deepseek-r1:8b"
        assert backend.model == "deepseek-r1:8b"
    finally:
        await backend.aclose()


async def test_without_the_engine_the_primary_error_passes_through(
    demo_server: OpenAITestServer,
) -> None:
    launcher = FakeLauncher(demo_server, available=False)
    backend = make("http://127.0.0.1:9", launcher)
    try:
        with pytest.raises(ModelUnavailable):
            await ask(backend)
        assert not (await backend.health()).reachable
    finally:
        await backend.aclose()
    assert launcher.starts == 0


async def test_always_skips_a_healthy_primary(
    ollama_server: OllamaTestServer, demo_server: OpenAITestServer
) -> None:
    backend = make(ollama_server.url, FakeLauncher(demo_server), use="always")
    try:
        assert (await ask(backend))[1].model == local_model.DEMO_MODEL_LABEL
    finally:
        await backend.aclose()
    assert not ollama_server.chat_requests()


async def test_factory_wraps_only_when_asked() -> None:
    plain = build_backend(ServiceSettings())  # default: demo model off
    auto = build_backend(ServiceSettings(demo_model={"use": "auto"}))
    try:
        assert isinstance(plain, OllamaBackend)
        assert isinstance(auto, DemoFallbackBackend) and auto.model == "deepseek-r1:8b"
    finally:
        await plain.aclose()
        await auto.aclose()
