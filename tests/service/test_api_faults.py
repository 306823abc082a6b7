"""Each model fault becomes a clear error with a stable code, as JSON and as an SSE
``error`` event; nothing hangs. Live service + OllamaBackend + the Ollama test server."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from service.api.deps import get_query_service, get_retriever
from service.api.main import create_app
from service.reasoning_log import ReasoningLog
from service.retrieval import Retriever
from tests.service.api_support import (
    LiveService,
    parse_sse,
    service_settings,
)
from tests.service.conftest import FormattedLog
from tests.service.ollama_server import OllamaTestServer, Reply

QUESTION = "How many vacation days do new employees get?"
SECRET = "PANGOLIN-THOUGHT-5150"
Start = Callable[..., LiveService]


@pytest.fixture
def start(retriever: Retriever, tmp_path: Path) -> Iterator[Start]:
    """Start the service against a model server URL, with optional settings."""
    running: list[LiveService] = []

    def _start(ollama_url: str, **extra: object) -> LiveService:
        settings = service_settings(
            tmp_path, ollama_url, reasoning_log={"dir": tmp_path / "reasoning"}, **extra
        )
        app = create_app(settings)
        app.dependency_overrides[get_retriever] = lambda: retriever
        live = LiveService(app).__enter__()
        running.append(live)
        return live

    yield _start
    for live in running:
        live.__exit__(None, None, None)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def ask(live: LiveService, **body: object) -> httpx.Response:
    body = {"question": QUESTION, "fallback": "none", **body}  # the errors themselves
    return httpx.post(f"{live.url}/v1/query", json=body, timeout=30)


def test_model_server_down_is_503_model_unavailable(start: Start) -> None:
    live = start(closed_port_url())

    response = ask(live)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_unavailable"


def test_model_server_down_with_sources_fallback_returns_passages_and_notice(
    start: Start,
) -> None:
    live = start(closed_port_url())

    response = ask(live, fallback="sources")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "" and body["cited"] == []
    assert body["notice"]["code"] == "model_unavailable"
    assert "passages" in body["notice"]["message"]
    assert body["citations"][0]["title"] == "Employee Handbook"


def test_streaming_fallback_sends_sources_then_done_with_notice(start: Start) -> None:
    live = start(closed_port_url())

    response = ask(live, stream=True, fallback="sources")

    events = parse_sse(response.text)
    assert [name for name, _ in events] == ["sources", "done"]
    assert json.loads(events[1][1])["notice"]["code"] == "model_unavailable"


def test_streaming_without_fallback_ends_with_an_error_event(start: Start) -> None:
    live = start(closed_port_url())

    response = ask(live, stream=True)

    events = parse_sse(response.text)
    assert [name for name, _ in events] == ["sources", "error"]
    error = json.loads(events[1][1])
    assert error["code"] == "model_unavailable" and error["message"]


def test_model_not_pulled_is_model_missing_naming_ollama_pull(
    start: Start, ollama_server: OllamaTestServer
) -> None:
    ollama_server.script.models.clear()
    live = start(ollama_server.url)

    response = ask(live)

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "model_missing"
    assert "ollama pull deepseek-r1:8b" in error["message"]


def test_slow_first_token_is_504_model_timeout(
    start: Start, ollama_server: OllamaTestServer
) -> None:
    ollama_server.script.push(Reply.answer(first_token_delay_s=10))
    live = start(ollama_server.url, timeouts={"first_token_s": 0.5})

    started = time.monotonic()
    response = ask(live)

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "model_timeout"
    assert time.monotonic() - started < 5
    assert ollama_server.wait_for_disconnect(timeout=5)  # the model request was given up


def test_garbage_in_the_stream_is_502_model_protocol_error(
    start: Start, ollama_server: OllamaTestServer, service_log: FormattedLog
) -> None:
    # well-formed JSON of the wrong shape: the client's validation error quotes the input
    message = {"role": "assistant", "content": "", "thinking": [SECRET]}
    odd = json.dumps({"model": "deepseek-r1:8b", "message": message, "done": False})
    ollama_server.script.push(Reply.answer(inject={3: odd}))
    live = start(ollama_server.url)

    response = ask(live)

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "model_protocol_error"
    assert SECRET not in response.text  # the raw upstream line is not echoed
    assert service_log.lines
    assert SECRET not in service_log.text  # nor logged, traceback included


def test_dropped_connection_mid_stream_is_an_sse_protocol_error(
    start: Start, ollama_server: OllamaTestServer
) -> None:
    ollama_server.script.push(
        Reply.answer("One two three four five six.", "hm", disconnect_after=5)
    )
    live = start(ollama_server.url)

    response = ask(live, stream=True, fallback="sources")  # too late for the fallback

    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "error" and "token" in names
    assert json.loads(events[-1][1])["code"] == "model_protocol_error"


def test_reasoning_that_never_closes_is_no_answer_and_still_logged(
    start: Start, ollama_server: OllamaTestServer, tmp_path: Path, service_log: FormattedLog
) -> None:
    ollama_server.script.models.clear()
    ollama_server.script.add_model("deepseek-r1:8b", thinking=False)
    ollama_server.script.push(
        Reply.raw(f"<think>{SECRET} and on and on", split_at=[4, 12], done_reason="length")
    )
    live = start(ollama_server.url)

    response = ask(live)

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "no_answer"
    assert SECRET not in response.text
    assert SECRET not in service_log.text
    log_files = list((tmp_path / "reasoning").glob("reasoning-*.jsonl"))
    records = [json.loads(line) for path in log_files for line in path.read_text().splitlines()]
    assert len(records) == 1
    assert records[0]["status"] == "no_answer" and SECRET in records[0]["reasoning"]
    assert ReasoningLog(tmp_path / "reasoning", 30).get(records[0]["request_id"]) == records[0]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [400, 500])
def test_model_error_bodies_never_reach_the_log(
    start: Start, ollama_server: OllamaTestServer, service_log: FormattedLog, stream: bool,
    status: int,
) -> None:  # fmt: skip
    """The upstream error text may quote the model's reasoning: the log never carries it.

    (The caller does get the upstream message, e.g. "CUDA out of memory", by design.)
    """
    ollama_server.script.push(Reply.failing(status, f"model crashed while thinking: {SECRET}"))
    live = start(ollama_server.url)

    response = ask(live, stream=stream)

    assert response.status_code == (200 if stream else 502), response.text
    assert "model crashed while thinking" in response.text
    assert service_log.lines, "the service logged nothing about the failed request"
    assert SECRET not in service_log.text


def test_unexpected_failure_is_500_without_a_stack_trace(
    start: Start, service_log: FormattedLog
) -> None:
    def broken() -> None:
        raise RuntimeError("kaboom at /secret/path.py line 12")

    live = start(closed_port_url())
    live_app = live._server.config.app  # the FastAPI app
    live_app.dependency_overrides[get_query_service] = broken

    response = ask(live)

    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "internal error; see the service log"}
    }
    assert "kaboom" not in response.text and "Traceback" not in response.text
    # the operator gets it: the formatted log carries the traceback (what the checks above see)
    assert "Traceback" in service_log.text and "kaboom at /secret/path.py" in service_log.text
