"""JSON logs (``INHOUSE_LOG_FORMAT=json``): every line one object with the request's id,
caller and timings, never the question or the reasoning; asserted on the formatted output
of a live service answering through the Ollama test server."""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.api.deps import get_retriever
from service.api.main import create_app
from service.logjson import JsonFormatter, LogSettings
from service.retrieval import Retriever
from tests.ingest.cli_helpers import INHOUSE, inhouse_env, run_inhouse
from tests.service.api_support import LiveService, service_settings
from tests.service.log_support import capture_all_logs
from tests.service.ollama_server import OllamaTestServer, Reply

QUESTION = "How many vacation days do new employees get, asks OKAPI-QUESTION-5521?"
SECRET = "ZEBRA-REASONING-7731"
ANSWER = "New employees receive 25 days of paid vacation per year [1]."


class Captured(logging.Handler):
    """Every record as the JSON formatter writes it (all loggers, non-propagating ones too)."""

    def __init__(self, formatter: JsonFormatter) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def capture(formatter: JsonFormatter) -> Iterator[Captured]:
    yield from capture_all_logs(Captured(formatter))


@pytest.fixture
def json_log() -> Iterator[Captured]:
    yield from capture(JsonFormatter())


@pytest.fixture
def json_log_with_content() -> Iterator[Captured]:
    yield from capture(JsonFormatter(content=True))


@pytest.fixture
def url(retriever: Retriever, ollama_server: OllamaTestServer, tmp_path: Path) -> Iterator[str]:
    app = create_app(service_settings(tmp_path / "data", ollama_server.url))
    app.dependency_overrides[get_retriever] = lambda: retriever
    with LiveService(app) as live:
        yield live.url


def ask(url: str, ollama: OllamaTestServer) -> dict[str, object]:
    ollama.script.push(Reply.answer(ANSWER, f"The user asks about vacation. {SECRET}"))
    response = httpx.post(
        f"{url}/v1/query", json={"question": QUESTION, "include_reasoning": True}, timeout=60
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def answer_lines(lines: list[str], request_id: object) -> list[dict[str, object]]:
    parsed = [json.loads(line) for line in lines]
    return [p for p in parsed if p["logger"] == "service.answer" and p["request_id"] == request_id]


def test_json_lines_carry_ids_and_timings_never_the_question_or_reasoning(
    url: str, ollama_server: OllamaTestServer, json_log: Captured
) -> None:
    body = ask(url, ollama_server)
    assert SECRET in str(body["reasoning"])  # the caller may read it; the log may not

    assert json_log.lines
    for raw in json_log.lines:
        assert "\n" not in raw and raw.isascii()
        record = json.loads(raw)
        assert {"ts", "level", "logger", "message", "request_id", "caller"} <= set(record)
        assert str(record["ts"]).endswith("Z")
    text = "\n".join(json_log.lines)
    assert "OKAPI-QUESTION-5521" not in text and "vacation days" not in text
    assert SECRET not in text and ANSWER not in text
    [line] = answer_lines(json_log.lines, body["request_id"])
    assert line["caller"] == "anonymous" and line["status"] == "ok"
    timings = line["timings"]
    assert isinstance(timings, dict) and timings["total_ms"] >= timings["retrieval_ms"] > 0
    assert "question" not in line


def test_question_text_only_when_explicitly_enabled(
    url: str, ollama_server: OllamaTestServer, json_log_with_content: Captured
) -> None:
    body = ask(url, ollama_server)
    [line] = answer_lines(json_log_with_content.lines, body["request_id"])
    assert line["question"] == QUESTION
    assert SECRET not in "\n".join(json_log_with_content.lines)  # reasoning: never logged


def test_a_value_cannot_split_or_forge_a_line() -> None:
    record = logging.LogRecord(
        "inhouse.test", logging.WARNING, __file__, 1, "file %s", ("a\nb\u2028c\u202e",), None
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line and "\u2028" not in line and line.isascii()
    parsed = json.loads(line)
    assert parsed["message"] == "file a\nb\u2028c\u202e"
    assert parsed["request_id"] is None and parsed["caller"] is None  # outside a request


def test_log_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INHOUSE_LOG_FORMAT", "json")
    assert LogSettings().format == "json" and LogSettings().content is False
    monkeypatch.setenv("INHOUSE_LOG_FORMAT", "xml")
    with pytest.raises(ValueError):
        LogSettings()


@pytest.mark.slow
def test_serve_logs_json_lines_and_serves_public_metrics(tmp_path: Path) -> None:
    """The real ``inhouse serve``: INHOUSE_LOG_FORMAT and INHOUSE_METRICS__PUBLIC from the
    environment; uvicorn's own lines come out as JSON too."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = inhouse_env(
        tmp_path / "data",
        INHOUSE_AUTH="keys",
        INHOUSE_LOG_FORMAT="json",
        INHOUSE_METRICS__PUBLIC="true",
        INHOUSE_DEMO_MODEL__USE="never",
    )
    process = subprocess.Popen(
        [INHOUSE, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                metrics = httpx.get(f"{url}/metrics", timeout=5)
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline, "no start"
                time.sleep(0.3)
        refused = httpx.get(f"{url}/v1/collections", timeout=5)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert metrics.status_code == 200 and "inhouse_http_requests_total" in metrics.text
    assert refused.status_code == 401  # public metrics open nothing else
    assert process.returncode == 0, output
    records = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    assert any(r["logger"].startswith("uvicorn") for r in records), records
    assert any("API keys" in str(r["message"]) for r in records)  # the no-keys warning


def test_serve_refuses_an_unknown_log_format(tmp_path: Path) -> None:
    done = run_inhouse(["serve"], tmp_path / "data", timeout=60, INHOUSE_LOG_FORMAT="xml")
    assert done.returncode == 2 and "log" in done.stderr.lower()
