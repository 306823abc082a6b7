"""POST /v1/chat/completions with the official openai SDK, unchanged, against the live
service (uvicorn + OllamaBackend + the Ollama test server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from service.api.deps import get_retriever
from service.api.main import create_app
from service.reasoning_log import ReasoningLog
from service.retrieval import Retriever
from tests.service.api_support import LiveService, service_settings
from tests.service.conftest import FormattedLog
from tests.service.ollama_server import OllamaTestServer, Reply

SECRET = "OKAPI-THOUGHT-4410"
OLD_SECRET = "EARLIER-THOUGHT-9921"
ANSWER = "Train travel is reimbursed in second class [1]."


@pytest.fixture
def live(
    retriever: Retriever, ollama_server: OllamaTestServer, tmp_path: Path
) -> Iterator[LiveService]:
    settings = service_settings(
        tmp_path, ollama_server.url, reasoning_log={"dir": tmp_path / "reasoning"}
    )
    app = create_app(settings)
    app.dependency_overrides[get_retriever] = lambda: retriever
    with LiveService(app) as service:
        yield service


@pytest.fixture
def client(live: LiveService) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0) as sdk:
        yield sdk


def reply() -> Reply:
    return Reply.answer(ANSWER, f"Travel question. {SECRET} The policy is source 1.")


def test_non_streaming_completion_is_the_answer_with_sources_aside(
    client: openai.OpenAI, ollama_server: OllamaTestServer, tmp_path: Path
) -> None:
    ollama_server.script.push(reply())

    completion = client.chat.completions.create(
        model="whatever-the-tool-sends",
        messages=[{"role": "user", "content": "How is train travel reimbursed?"}],
    )

    assert completion.choices[0].message.content == ANSWER
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "deepseek-r1:8b"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    extra = completion.model_extra or {}
    sources = extra["inhouse_sources"]
    assert sources[0]["title"] == "Travel Expense Policy" and sources[0]["n"] == 1
    assert SECRET not in completion.model_dump_json()
    record = ReasoningLog(tmp_path / "reasoning", 30).get(extra["inhouse_request_id"])
    assert record is not None and SECRET in record["reasoning"]


def test_streaming_completion_yields_answer_deltas_only(
    client: openai.OpenAI, ollama_server: OllamaTestServer, service_log: FormattedLog
) -> None:
    ollama_server.script.push(reply())

    stream = client.chat.completions.create(
        model="deepseek-r1:8b",
        messages=[{"role": "user", "content": "How is train travel reimbursed?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == ANSWER
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    first = chunks[0].model_extra or {}
    assert first["inhouse_sources"][0]["title"] == "Travel Expense Policy"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert all(SECRET not in c.model_dump_json() for c in chunks)
    assert SECRET not in service_log.text


def test_history_reaches_the_model_without_reasoning(
    client: openai.OpenAI, ollama_server: OllamaTestServer
) -> None:
    ollama_server.script.push(reply())

    client.chat.completions.create(
        model="deepseek-r1:8b",
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What does the handbook say about vacation?"},
            {
                "role": "assistant",
                "content": f"<think>{OLD_SECRET} let me see</think>25 days a year [1].",
            },
            {"role": "user", "content": "And how is train travel reimbursed?"},
        ],
    )

    sent = ollama_server.chat_requests()[0].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == "What does the handbook say about vacation?"
    assert sent[1]["content"] == "25 days a year [1]."
    assert "Answer in one sentence." in sent[2]["content"]
    assert sent[2]["content"].rstrip().endswith("Question: And how is train travel reimbursed?")
    assert OLD_SECRET not in json.dumps(sent) and "<think>" not in json.dumps(sent)


def test_multi_turn_through_the_sdk_keeps_reasoning_out_of_the_history(
    client: openai.OpenAI, ollama_server: OllamaTestServer
) -> None:
    ollama_server.script.push(reply(), reply())
    question = {"role": "user", "content": "How is train travel reimbursed?"}
    first = client.chat.completions.create(model="m", messages=[question])
    follow_up = [
        question,
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "And flights?"},
    ]

    client.chat.completions.create(model="m", messages=follow_up)  # type: ignore[arg-type]

    second = ollama_server.chat_requests()[1].body["messages"]
    assert second[1] == {"role": "assistant", "content": ANSWER}
    assert SECRET not in json.dumps(second)


def test_model_missing_is_an_sdk_error_with_the_pull_command(
    client: openai.OpenAI, ollama_server: OllamaTestServer
) -> None:
    ollama_server.script.models.clear()

    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "Vacation days?"}],
            extra_body={"fallback": "none"},  # the default would answer with an extract
        )

    assert raised.value.status_code == 503
    body = raised.value.body
    assert isinstance(body, dict) and body["code"] == "model_missing"
    assert "ollama pull deepseek-r1:8b" in body["message"]


def test_a_stream_that_breaks_raises_in_the_sdk(
    client: openai.OpenAI, ollama_server: OllamaTestServer
) -> None:
    ollama_server.script.push(Reply.answer(ANSWER, "hm", disconnect_after=4))

    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Travel?"}], stream=True
    )
    with pytest.raises(openai.APIError) as raised:
        list(stream)

    assert isinstance(raised.value.body, dict)
    assert raised.value.body["code"] == "model_protocol_error"


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "assistant", "content": "I speak last"}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        [{"role": "user", "content": ""}],
        [],
    ],
)
def test_unusable_messages_are_422(
    live: LiveService, ollama_server: OllamaTestServer, messages: list[object]
) -> None:
    response = httpx.post(
        f"{live.url}/v1/chat/completions", json={"model": "m", "messages": messages}, timeout=10
    )

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert ollama_server.chat_requests() == []


def test_text_parts_are_accepted(client: openai.OpenAI, ollama_server: OllamaTestServer) -> None:
    ollama_server.script.push(reply())

    completion = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Train travel?"}]}],
    )

    assert completion.choices[0].message.content == ANSWER
