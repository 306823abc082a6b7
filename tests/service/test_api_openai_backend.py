"""The service with INHOUSE_BACKEND=openai, end to end: uvicorn on a loopback port, the real
OpenAIBackend, the OpenAI-protocol test server, a real Chroma index with real embeddings.
Reasoning in all three wire styles stays out of answers, streams and logs, and lands in the
reasoning log; faults keep the Ollama backend's codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.api.deps import get_retriever
from service.api.main import create_app
from service.reasoning_log import ReasoningLog
from service.retrieval import Retriever
from tests.service.api_support import (
    LiveService,
    build_index,
    make_retriever,
    parse_sse,
    service_settings,
)
from tests.service.conftest import FormattedLog
from tests.service.ollama_server import Reply
from tests.service.openai_server import OpenAIScript, OpenAITestServer, start_openai_server

MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
SECRET = "OKAPI-REASONING-5521"
ANSWER = "New employees receive 25 days of paid vacation per year [1]."
QUESTION = "How many vacation days do new employees get?"


@dataclass
class Running:
    url: str
    server: OpenAITestServer
    reasoning: ReasoningLog

    def post(self, body: dict[str, object]) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/query", json=body, timeout=30)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("openai-index")
    build_index(data_dir)
    return data_dir


@pytest.fixture(scope="module")
def retriever(index_dir: Path) -> Retriever:
    return make_retriever(index_dir)


@pytest.fixture
def running(index_dir: Path, retriever: Retriever, tmp_path: Path) -> Iterator[Running]:
    server = start_openai_server(OpenAIScript(models=[MODEL]))
    settings = service_settings(
        index_dir,
        backend="openai",
        model=MODEL,
        openai={"base_url": server.base_url},
        reasoning_log={"dir": tmp_path / "reasoning"},
    )
    app = create_app(settings)
    app.dependency_overrides[get_retriever] = lambda: retriever
    try:
        with LiveService(app) as live:
            yield Running(live.url, server, ReasoningLog(tmp_path / "reasoning", 30))
    finally:
        server.stop()


@pytest.mark.parametrize("style", ["reasoning_content", "reasoning", "raw"])
def test_reasoning_is_logged_apart_in_every_style(
    running: Running, style: str, service_log: FormattedLog
) -> None:
    running.server.script.reasoning_style = style  # type: ignore[assignment]
    running.server.script.push(Reply.answer(ANSWER, f"Vacation question. {SECRET} says 25."))

    response = running.post({"question": QUESTION, "stream": True})

    assert response.status_code == 200
    assert SECRET not in response.text
    events = parse_sse(response.text)
    tokens = "".join(json.loads(d)["text"] for name, d in events if name == "token")
    assert tokens == ANSWER
    done = json.loads(events[-1][1])
    assert events[-1][0] == "done" and done["model"] == MODEL and done["cited"] == [1]
    record = running.reasoning.get(done["request_id"])
    assert record is not None and SECRET in record["reasoning"]
    assert SECRET not in service_log.text
    sent = running.server.chat_requests()[-1].body
    assert sent["model"] == MODEL and [m["role"] for m in sent["messages"]] == ["user"]
    assert "[1] Employee Handbook, pp. 1-3" in sent["messages"][0]["content"]  # one passage


@pytest.mark.parametrize(
    ("script", "reply", "status", "code"),
    [
        ({"models": ["other-model"]}, None, 503, "model_missing"),
        ({}, Reply.answer(inject={2: "data: {broken"}), 502, "model_protocol_error"),
        ({}, Reply.raw("<think>never ends"), 502, "no_answer"),
    ],
)
def test_faults_keep_their_codes(
    running: Running, script: dict[str, object], reply: Reply | None, status: int, code: str
) -> None:
    for key, value in script.items():
        setattr(running.server.script, key, value)
    if reply is not None:
        running.server.script.reasoning_style = "raw"
        running.server.script.push(reply)
    response = running.post({"question": QUESTION, "fallback": "none"})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_unreachable_server_falls_back_to_sources(running: Running) -> None:
    running.server.stop()
    response = running.post({"question": QUESTION, "fallback": "sources"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "" and body["notice"]["code"] == "model_unavailable"
    assert body["citations"][0]["title"] == "Employee Handbook"
    ready = httpx.get(f"{running.url}/readyz", timeout=10)
    assert ready.status_code == 503
