"""JSON logs (``INHOUSE_LOG_FORMAT=json``): every line one object with the request's id,
caller and timings, never the question or the reasoning; asserted on the formatted output
of a live service answering through the Ollama test server."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.api.deps import get_retriever
from service.api.main import create_app
from service.logjson import JsonFormatter, LogSettings
from service.retrieval import Retriever
from tests.service.api_support import LiveService, build_index, make_retriever, service_settings
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
    handler = Captured(formatter)
    root = logging.getLogger()
    loggers = [root] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    level = root.level
    root.setLevel(logging.DEBUG)
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def json_log() -> Iterator[Captured]:
    yield from capture(JsonFormatter())


@pytest.fixture
def json_log_with_content() -> Iterator[Captured]:
    yield from capture(JsonFormatter(content=True))


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    data_dir = tmp_path_factory.mktemp("index")
    build_index(data_dir)
    return make_retriever(data_dir)


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
    for line in json_log.lines:
        assert "\n" not in line and line.isascii()
        record = json.loads(line)
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
