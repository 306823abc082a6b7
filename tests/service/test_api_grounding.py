"""Grounded answers over HTTP: extracts when no model answers (or when asked), the figure
check on every generated answer (JSON, SSE ``done``, chat completions), strict mode and
the OpenAPI schema. Live service + OllamaBackend + the Ollama test server + real Chroma."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api.deps import get_retriever
from service.api.main import create_app
from service.retrieval import Retriever
from tests.service.api_support import (
    HANDBOOK,
    Doc,
    LiveService,
    build_index,
    make_retriever,
    parse_sse,
    service_settings,
)
from tests.service.ollama_server import OllamaTestServer, Reply

REPORT = Doc(
    "main",
    "finance/q3-report.pdf",
    "Q3 Report filed 10/24/2024",
    [
        "Net sales by category (in millions): Products 94,836 and Services 24,213. Net sales"
        " rose 12% year over year in the quarter ended September 30, 2024.",
    ],
)
QUESTION = "What were the net sales of products in the quarter?"
Start = Callable[..., LiveService]


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    data_dir = tmp_path_factory.mktemp("index")
    build_index(data_dir, [HANDBOOK, REPORT])
    return make_retriever(data_dir)


@pytest.fixture
def start(retriever: Retriever, tmp_path: Path) -> Iterator[Start]:
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
    return httpx.post(f"{live.url}/v1/query", json={"question": QUESTION, **body}, timeout=30)


def report_n(body: dict[str, Any]) -> int:
    return next(c["n"] for c in body["citations"] if c["title"].startswith("Q3 Report"))


def done_of(response: httpx.Response) -> dict[str, Any]:
    events = parse_sse(response.text)
    assert events[-1][0] == "done", events
    return dict(json.loads(events[-1][1]))


def test_no_model_server_answers_with_an_extract_by_default(start: Start) -> None:
    live = start(closed_port_url())

    response = ask(live)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mode"] == "extract" and body["grounding"] is None
    assert body["notice"]["code"] == "model_unavailable"
    n = report_n(body)
    assert (
        f"“Net sales by category (in millions): Products 94,836 and Services 24,213.” [{n}]"
        in (body["answer"])
    )
    assert n in body["cited"] and body["model"] == ""


def test_streamed_extract_sends_sources_token_done(start: Start) -> None:
    live = start(closed_port_url())

    response = ask(live, stream=True)

    events = parse_sse(response.text)
    assert [name for name, _ in events] == ["sources", "token", "done"]
    done = json.loads(events[-1][1])
    assert done["mode"] == "extract" and done["notice"]["code"] == "model_unavailable"
    assert json.loads(events[1][1])["text"] == done["answer"]


def test_mode_extract_makes_no_model_call(start: Start, ollama_server: OllamaTestServer) -> None:
    live = start(ollama_server.url)

    body = ask(live, mode="extract").json()

    assert body["mode"] == "extract" and "94,836" in body["answer"]
    assert ollama_server.chat_requests() == []


@pytest.mark.parametrize(
    "answer",
    [
        "Product net sales were $94.8 billion [{n}].",  # rescaled
        "Products brought in 94,836 million dollars, up 12 percent [{n}].",  # reformatted
        "Products: $94,836 million [{n}]; the quarter ended Sept. 30, 2024 [{n}].",
        # from the source heading the prompt shows (the document title), not the passage
        "The Q3 report, filed 10/24/2024 [{n}], puts products at 94,836 million.",
    ],
)
def test_supported_figures_pass_the_check(
    start: Start, ollama_server: OllamaTestServer, answer: str
) -> None:
    live = start(ollama_server.url)
    n = report_n(ask(live, mode="extract").json())
    ollama_server.script.push(Reply.answer(answer.format(n=n), "thinking"))

    body = ask(live).json()

    assert body["mode"] == "model" and body["answer"] == answer.format(n=n)
    assert body["grounding"]["unsupported"] == [] and body["grounding"]["checked"] >= 1
    assert body["grounding"]["invalid_citations"] == []


def test_unsupported_figures_and_invalid_citations_are_reported(
    start: Start, ollama_server: OllamaTestServer
) -> None:
    live = start(ollama_server.url)
    n = report_n(ask(live, mode="extract").json())
    answer = f"Product net sales were $97.3 billion [{n}], up 12% [{n}][9]."
    ollama_server.script.push(Reply.answer(answer, "thinking"))

    body = ask(live).json()

    grounding = body["grounding"]
    assert grounding["unsupported"] == [
        {
            "text": "$97.3 billion",
            "span": [answer.index("$97.3"), answer.index("$97.3") + 13],
            "kind": "figure",
        }
    ]
    assert grounding["invalid_citations"] == [9]
    # reported, not replaced (strict mode is off); the mark to no passage is removed
    assert body["answer"] == answer.replace("[9]", "") and body["cited"] == [n]


def test_without_attribution_answers_stay_as_the_model_wrote_them(
    start: Start, ollama_server: OllamaTestServer
) -> None:
    live = start(ollama_server.url, grounding={"attribute": False})
    answer = "Products brought in 94,836 million in net sales [9]."
    ollama_server.script.push(Reply.answer(answer, "thinking"))

    body = ask(live).json()

    assert body["answer"] == answer and body["cited"] == []
    assert body["grounding"]["invalid_citations"] == [9]
    assert body["grounding"]["attributed"] == []


UNCITED = "Products brought in 94,836 million in net sales. The moon is made of green cheese."


def attributed_answer(n: int) -> str:
    return UNCITED.replace(" in net sales.", f" in net sales [{n}].")


def test_uncited_sentences_are_attributed_and_labelled_as_inferred(
    start: Start, ollama_server: OllamaTestServer
) -> None:
    live = start(ollama_server.url)
    n = report_n(ask(live, mode="extract").json())
    ollama_server.script.push(Reply.answer(UNCITED, "thinking"))
    ollama_server.script.push(Reply.answer(UNCITED, "thinking"))

    body = ask(live).json()
    streamed = ask(live, stream=True)

    final = attributed_answer(n)
    mark = final.index(f"[{n}]")
    expected = [
        {
            "n": n,
            "span": [mark, mark + len(f"[{n}]")],
            "sentence": [0, final.index(".") + 1],
            "score": body["grounding"]["attributed"][0]["score"],
        }
    ]
    assert body["answer"] == final and body["cited"] == [n]
    assert body["grounding"]["attributed"] == expected  # the moon sentence stays uncited
    assert 0.5 <= expected[0]["score"] <= 1
    assert body["grounding"]["unsupported"] == [] and body["grounding"]["invalid_citations"] == []
    # streaming: the tokens are the model's text; done carries the final one
    events = parse_sse(streamed.text)
    tokens = "".join(json.loads(d)["text"] for name, d in events if name == "token")
    assert tokens.strip() == UNCITED
    done = done_of(streamed)
    assert done["answer"] == final and done["cited"] == [n]
    assert done["grounding"]["attributed"] == expected


def test_chat_completions_send_the_attributed_answer(
    start: Start, ollama_server: OllamaTestServer
) -> None:
    live = start(ollama_server.url)
    n = report_n(ask(live, mode="extract").json())
    ollama_server.script.push(Reply.answer(UNCITED, "thinking"))
    ollama_server.script.push(Reply.answer(UNCITED, "thinking"))
    messages = [{"role": "user", "content": QUESTION}]

    body = httpx.post(
        f"{live.url}/v1/chat/completions", json={"messages": messages}, timeout=30
    ).json()
    streamed = httpx.post(
        f"{live.url}/v1/chat/completions", json={"messages": messages, "stream": True}, timeout=30
    )

    assert body["choices"][0]["message"]["content"] == attributed_answer(n)
    assert [a["n"] for a in body["inhouse_grounding"]["attributed"]] == [n]
    frames = [json.loads(d) for _, d in parse_sse(streamed.text) if d != "[DONE]"]
    content = "".join(f["choices"][0]["delta"].get("content", "") for f in frames)
    assert content.strip() == UNCITED  # deltas already sent are the model's
    assert frames[-1]["inhouse_answer"] == attributed_answer(n)
    assert [a["n"] for a in frames[-1]["inhouse_grounding"]["attributed"]] == [n]


def test_streamed_answers_carry_the_check_in_done(
    start: Start, ollama_server: OllamaTestServer
) -> None:
    live = start(ollama_server.url)
    n = report_n(ask(live, mode="extract").json())
    ollama_server.script.push(Reply.answer(f"Sales rose 15% [{n}].", "thinking"))

    done = done_of(ask(live, stream=True))

    assert done["mode"] == "model" and done["answer"] == f"Sales rose 15% [{n}]."
    assert [u["text"] for u in done["grounding"]["unsupported"]] == ["15%"]


def test_strict_mode_replaces_unsupported_answers_by_the_extract(
    start: Start, ollama_server: OllamaTestServer
) -> None:
    live = start(ollama_server.url, grounding={"strict": True})
    n = report_n(ask(live, mode="extract").json())
    ollama_server.script.push(Reply.answer(f"Sales were $97.3 billion [{n}].", "thinking"))
    ollama_server.script.push(Reply.answer(f"Sales were $97.3 billion [{n}].", "thinking"))

    body = ask(live).json()
    done = done_of(ask(live, stream=True))

    for result in (body, done):
        assert result["mode"] == "extract" and "97.3" not in result["answer"]
        assert "94,836" in result["answer"]
        assert result["notice"]["code"] == "grounding_failed"
        assert result["grounding"]["unsupported"][0]["text"] == "$97.3 billion"


def test_chat_completions_return_the_extract_as_content(start: Start) -> None:
    live = start(closed_port_url())
    messages = [{"role": "user", "content": QUESTION}]

    body = httpx.post(
        f"{live.url}/v1/chat/completions", json={"messages": messages}, timeout=30
    ).json()
    streamed = httpx.post(
        f"{live.url}/v1/chat/completions", json={"messages": messages, "stream": True}, timeout=30
    )

    content = body["choices"][0]["message"]["content"]
    assert "94,836" in content and content.startswith("“")
    assert body["inhouse_mode"] == "extract"
    assert body["inhouse_notice"]["code"] == "model_unavailable"
    frames = [json.loads(d) for _, d in parse_sse(streamed.text) if d != "[DONE]"]
    assert "".join(f["choices"][0]["delta"].get("content", "") for f in frames) == content
    assert frames[-1]["inhouse_mode"] == "extract"


def test_chat_completions_carry_the_check(start: Start, ollama_server: OllamaTestServer) -> None:
    live = start(ollama_server.url)
    ollama_server.script.push(Reply.answer("Sales rose 15% [1].", "thinking"))
    messages = [{"role": "user", "content": QUESTION}]

    body = httpx.post(
        f"{live.url}/v1/chat/completions", json={"messages": messages}, timeout=30
    ).json()

    assert body["inhouse_mode"] == "model"
    assert [u["text"] for u in body["inhouse_grounding"]["unsupported"]] == ["15%"]


def test_fallback_none_is_the_error_and_sources_the_passages(start: Start) -> None:
    live = start(closed_port_url())

    assert ask(live, fallback="none").status_code == 503
    body = ask(live, fallback="sources").json()
    assert body["mode"] == "sources" and body["answer"] == ""


def test_openapi_schema_describes_modes_fallbacks_and_grounding(start: Start) -> None:
    live = start(closed_port_url())

    schema = httpx.get(f"{live.url}/openapi.json", timeout=10).json()

    parts = schema["components"]["schemas"]
    request = parts["QueryRequest"]["properties"]
    assert request["fallback"]["enum"] == ["extract", "sources", "none"]
    assert request["fallback"]["default"] == "extract"
    assert request["mode"]["enum"] == ["model", "extract"]
    response = parts["QueryResponse"]["properties"]
    assert response["mode"]["enum"] == ["model", "extract", "sources"]
    assert set(parts["GroundingModel"]["properties"]) == {
        "checked",
        "unsupported",
        "invalid_citations",
        "attributed",
    }
    assert set(parts["AttributedMark"]["properties"]) == {"n", "span", "sentence", "score"}
    chat = parts["ChatCompletionResponse"]["properties"]
    assert {"inhouse_mode", "inhouse_notice", "inhouse_grounding"} <= set(chat)
