"""POST /v1/query end to end: uvicorn on a loopback port, the real OllamaBackend, the
Ollama test server, a real Chroma index with real embeddings."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ingest.index import ChromaIndex, make_chroma_client
from ingest.settings import IngestSettings
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
    shared_embedder,
)
from tests.service.conftest import FormattedLog
from tests.service.ollama_server import OllamaTestServer, Reply

SECRET = "ZEBRA-REASONING-7731"  # appears only in the model's reasoning
ANSWER = "New employees receive 25 days of paid vacation per year [1]."
QUESTION = "How many vacation days do new employees get?"


@dataclass
class Running:
    url: str
    ollama: OllamaTestServer
    reasoning: ReasoningLog

    def post(self, body: dict[str, object], **kw: object) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/query", json=body, timeout=30, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("index")
    build_index(data_dir)
    settings = IngestSettings(data_dir=data_dir)
    ChromaIndex(make_chroma_client(settings), shared_embedder().info).collection(
        "empty", create=True
    )
    return data_dir


@pytest.fixture(scope="module")
def retriever(index_dir: Path) -> Retriever:
    return make_retriever(index_dir)


@pytest.fixture
def running(
    index_dir: Path, retriever: Retriever, ollama_server: OllamaTestServer, tmp_path: Path
) -> Iterator[Running]:
    settings = service_settings(
        index_dir, ollama_server.url, reasoning_log={"dir": tmp_path / "reasoning"}
    )
    app = create_app(settings)
    app.dependency_overrides[get_retriever] = lambda: retriever
    with LiveService(app) as live:
        yield Running(live.url, ollama_server, ReasoningLog(tmp_path / "reasoning", 30))


def secret_reply(**faults: object) -> Reply:
    return Reply.answer(
        ANSWER, f"The user asks about vacation. {SECRET} Source 1 says 25.", **faults
    )


def test_answer_is_cited_and_reasoning_goes_only_to_the_reasoning_log(
    running: Running, service_log: FormattedLog
) -> None:
    running.ollama.script.push(secret_reply())

    response = running.post({"question": QUESTION})

    assert response.status_code == 200, response.text
    assert SECRET not in response.text
    body = response.json()
    assert body["answer"] == ANSWER
    assert body["reasoning"] is None
    assert body["cited"] == [1]
    first = body["citations"][0]
    assert (first["n"], first["title"], first["page"]) == (1, "Employee Handbook", 1)
    assert "25 days of paid vacation" in first["snippet"]
    assert first["collection"] == "main" and first["source"] == "hr/handbook.pdf"
    assert body["model"] == "deepseek-r1:8b"
    assert body["usage"]["completion_tokens"] > 0
    assert body["timings"]["total_ms"] >= body["timings"]["retrieval_ms"] > 0
    assert response.headers["x-request-id"] == body["request_id"]

    # what the model was sent: R1 usage notes
    sent = running.ollama.chat_requests()[0].body
    assert [m["role"] for m in sent["messages"]] == ["user"]
    prompt = sent["messages"][0]["content"]
    # the handbook's pages side by side, as one passage
    assert "[1] Employee Handbook, pp. 1-3\nNew employees receive 25 days" in prompt
    assert prompt.rstrip().endswith(f"Question: {QUESTION}")
    assert sent["options"]["temperature"] == 0.6
    assert sent["think"] is True

    record = running.reasoning.get(body["request_id"])
    assert record is not None and SECRET in record["reasoning"]
    assert record["status"] == "ok" and record["question"] == QUESTION
    assert record["collections"] == ["finance", "main"] or record["collections"] == [
        "empty",
        "finance",
        "main",
    ]
    assert isinstance(record["caller_id"], str) and record["caller_id"]
    assert record["usage"]["completion_tokens"] == body["usage"]["completion_tokens"]

    via_api = httpx.get(f"{running.url}/v1/reasoning/{body['request_id']}", timeout=10)
    assert via_api.status_code == 200 and SECRET in via_api.json()["reasoning"]

    assert service_log.lines, "the service logged nothing at all"
    assert SECRET not in service_log.text
    assert body["request_id"] in service_log.text


def test_stream_sends_sources_first_then_tokens_then_done(running: Running) -> None:
    running.ollama.script.push(secret_reply())

    response = running.post({"question": QUESTION, "stream": True})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert SECRET not in response.text
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "done"
    assert set(names[1:-1]) == {"token"}
    assert len(names) > 4  # the answer arrived in several deltas
    tokens = "".join(json.loads(data)["text"] for name, data in events if name == "token")
    assert tokens == ANSWER
    sources = json.loads(events[0][1])
    assert sources["citations"][0]["title"] == "Employee Handbook"
    done = json.loads(events[-1][1])
    assert done["request_id"] == sources["request_id"] and done["cited"] == [1]
    record = running.reasoning.get(done["request_id"])
    assert record is not None and SECRET in record["reasoning"]


def test_stream_includes_reasoning_events_only_when_asked(running: Running) -> None:
    running.ollama.script.push(secret_reply())

    response = running.post({"question": QUESTION, "stream": True, "include_reasoning": True})

    events = parse_sse(response.text)
    reasoning = "".join(json.loads(d)["text"] for n, d in events if n == "reasoning")
    tokens = "".join(json.loads(d)["text"] for n, d in events if n == "token")
    assert SECRET in reasoning
    assert SECRET not in tokens and tokens == ANSWER
    names = [n for n, _ in events]
    assert names.index("sources") == 0 and names.index("reasoning") < names.index("token")


def test_raw_think_tags_are_split_when_the_model_cannot_think_separately(
    running: Running,
) -> None:
    running.ollama.script.models.clear()
    running.ollama.script.add_model("deepseek-r1:8b", thinking=False)
    text = f"<think>{SECRET} weighing sources</think>\n\nSalaries are paid on the 25th [1]."
    running.ollama.script.push(Reply.raw(text, split_at=[3, 8, 30, 40, 41, 47]))

    response = running.post({"question": "When are salaries paid?", "collections": ["finance"]})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == "Salaries are paid on the 25th [1]."
    assert SECRET not in response.text
    assert [c["collection"] for c in body["citations"]] == ["finance"]
    assert "think" not in running.ollama.chat_requests()[0].body
    record = running.reasoning.get(body["request_id"])
    assert record is not None and SECRET in record["reasoning"]


def test_client_disconnect_cancels_the_model_request(running: Running) -> None:
    words = " ".join(f"word{i}" for i in range(200))
    running.ollama.script.push(Reply.answer(words, "short", chunk_delay_s=0.05))

    with httpx.Client(timeout=10) as client:
        with client.stream(
            "POST", f"{running.url}/v1/query", json={"question": QUESTION, "stream": True}
        ) as response:
            lines = response.iter_lines()
            seen = []
            for line in lines:
                seen.append(line)
                if line.startswith("event: token"):
                    break
    request_id = json.loads(seen[1][len("data: ") :])["request_id"]

    assert running.ollama.wait_for_disconnect(timeout=5)
    assert not running.ollama.chat_requests()[0].finished
    deadline = time.monotonic() + 5
    while (record := running.reasoning.get(request_id)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record is not None and record["status"] == "cancelled"


def test_disconnect_while_waiting_for_the_first_token_cancels_at_once(running: Running) -> None:
    running.ollama.script.push(Reply.answer(first_token_delay_s=20))

    started = time.monotonic()
    with httpx.Client(timeout=10) as client:
        with client.stream(
            "POST", f"{running.url}/v1/query", json={"question": QUESTION, "stream": True}
        ) as response:
            lines = response.iter_lines()  # held: dropping it would close the connection
            for line in lines:
                if line.startswith("event: sources"):
                    break
            assert running.ollama.wait_for_requests(1)  # the model is now "thinking"
            assert not running.ollama.chat_requests()[0].disconnected

    assert running.ollama.wait_for_disconnect(timeout=5)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "body",
    [
        {"question": ""},
        {"question": "   \n "},
        {"question": "x" * 4001},
        {"question": 42},
        {"question": ["what", "now"]},
        {"question": "bad \x00 byte"},
        {},
        {"question": "fine", "top_k": 0},
        {"question": "fine", "top_k": 51},
        {"question": "fine", "collections": ["Not A Name!"]},
        {"question": "fine", "fallback": "maybe"},
        {"question": "fine", "unknown_field": 1},
    ],
)
def test_bad_questions_are_422_invalid_request(running: Running, body: dict[str, object]) -> None:
    response = running.post(body)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["message"]
    assert running.ollama.chat_requests() == []


def test_body_that_is_not_json_is_422(running: Running) -> None:
    response = httpx.post(
        f"{running.url}/v1/query",
        content=b"\xff\xfe not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_empty_collection_is_no_documents(running: Running) -> None:
    response = running.post({"question": QUESTION, "collections": ["empty"]})

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "no_documents" and "inhouse ingest" in error["message"]


def test_unknown_collection_is_collection_not_found(running: Running) -> None:
    response = running.post({"question": QUESTION, "collections": ["nosuch"]})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "collection_not_found"


def test_empty_index_is_no_documents(tmp_path: Path, ollama_server: OllamaTestServer) -> None:
    app = create_app(service_settings(tmp_path, ollama_server.url))
    app.dependency_overrides[get_retriever] = lambda: make_retriever(tmp_path)
    with LiveService(app) as live:
        response = httpx.post(f"{live.url}/v1/query", json={"question": QUESTION}, timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_documents"


def test_unknown_reasoning_record_is_404(running: Running) -> None:
    response = httpx.get(f"{running.url}/v1/reasoning/0123456789abcdef01234567")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_non_streaming_client_that_gives_up_cancels_the_model_request(
    running: Running,
) -> None:
    running.ollama.script.push(Reply.answer(first_token_delay_s=20))

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{running.url}/v1/query", json={"question": QUESTION}, timeout=2)

    assert running.ollama.wait_for_disconnect(timeout=5)
