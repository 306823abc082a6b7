"""The Ollama test server speaks Ollama's documented wire format (checked with plain httpx)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.service.ollama_server import (
    DEFAULT_MODEL,
    DEFAULT_REASONING,
    OllamaTestServer,
    Reply,
    Script,
    start_server,
)

CHAT = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "hi there"}]}


def lines(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines()]


def test_version_tags_show(ollama_server: OllamaTestServer) -> None:
    client = httpx.Client(base_url=ollama_server.url)
    assert client.get("/").text == "Ollama is running"
    assert client.get("/api/version").json() == {"version": "0.12.6"}
    (model,) = client.get("/api/tags").json()["models"]
    assert model["name"] == model["model"] == DEFAULT_MODEL
    assert isinstance(model["size"], int) and len(model["digest"]) == 64
    assert model["details"]["format"] == "gguf"
    shown = client.post("/api/show", json={"model": DEFAULT_MODEL}).json()
    assert shown["capabilities"] == ["completion", "thinking"]
    assert {"modelfile", "parameters", "template", "details", "model_info"} <= set(shown)
    missing = client.post("/api/show", json={"model": "nope"})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'nope' not found"})
    assert client.post("/api/version").status_code == 405
    assert client.get("/api/generate").status_code == 404


def test_untagged_name_means_latest(ollama_server: OllamaTestServer) -> None:
    ollama_server.script.add_model("tiny", thinking=False)
    client = httpx.Client(base_url=ollama_server.url)
    assert "tiny:latest" in [m["name"] for m in client.get("/api/tags").json()["models"]]
    shown = client.post("/api/show", json={"model": "tiny"}).json()
    assert shown["capabilities"] == ["completion"]


def test_stream_lines_and_final_stats(ollama_server: OllamaTestServer) -> None:
    ollama_server.script.push(Reply.answer("Hi you.", "Think.", done_reason="length"))
    response = httpx.post(f"{ollama_server.url}/api/chat", json={**CHAT, "think": True})
    assert response.headers["content-type"] == "application/x-ndjson"
    *chunks, final = lines(response)
    assert [c["message"].get("thinking", "") for c in chunks] == ["Think.", "", ""]
    assert [c["message"]["content"] for c in chunks] == ["", "Hi", " you."]
    assert all(c["done"] is False and c["message"]["role"] == "assistant" for c in chunks)
    assert all(c["model"] == DEFAULT_MODEL and c["created_at"].endswith("Z") for c in chunks)
    assert final["done"] is True and final["done_reason"] == "length"
    assert final["message"] == {"role": "assistant", "content": ""}
    assert final["eval_count"] == 3 and final["prompt_eval_count"] == 2
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(final[key], int) and final[key] >= 0


def test_non_streaming_single_object(ollama_server: OllamaTestServer) -> None:
    response = httpx.post(
        f"{ollama_server.url}/api/chat", json={**CHAT, "stream": False, "think": True}
    )
    body = response.json()
    assert body["done"] is True and body["done_reason"] == "stop"
    assert body["message"]["content"].startswith("Hello!")
    assert body["message"]["thinking"].startswith("The user")


def test_raw_mode_keeps_tags_and_thinking_mode_strips_them(
    ollama_server: OllamaTestServer,
) -> None:
    text = "<think>\nabc</think>\n\nxyz"
    url = f"{ollama_server.url}/api/chat"
    ollama_server.script.push(Reply.raw(text, split_at=[3, 9]), Reply.raw(text, split_at=[3, 9]))
    raw = [c["message"]["content"] for c in lines(httpx.post(url, json=CHAT))[:-1]]
    assert raw == ["<th", "ink>\na", "bc</think>\n\nxyz"]
    split = lines(httpx.post(url, json={**CHAT, "think": True}))[:-1]
    assert [(c["message"].get("thinking", ""), c["message"]["content"]) for c in split] == [
        ("a", ""),
        ("bc", "xyz"),
    ]


def test_prefilled_raw_text_splits_and_pieces_render() -> None:
    reply = Reply.raw("reason</think> answer", split_at=[4])
    assert reply.split_chunks() == [("reas", ""), ("on", "answer")]
    pieces = Reply.from_pieces([("a", ""), ("b", ""), ("", "c")], prefilled=True)
    assert pieces.raw_chunks() == ["a", "b", "</think>c"]
    assert Reply.from_pieces([("a", ""), ("", "c")]).raw_chunks() == ["<think>a", "</think>c"]


def test_chat_errors(ollama_server: OllamaTestServer) -> None:
    url = f"{ollama_server.url}/api/chat"
    missing = httpx.post(url, json={**CHAT, "model": "ghost"})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'ghost' not found"})
    ollama_server.script.add_model("plain", thinking=False)
    refused = httpx.post(url, json={**CHAT, "model": "plain", "think": True})
    assert (refused.status_code, refused.json()) == (
        400,
        {"error": '"plain" does not support thinking'},
    )
    ollama_server.script.push(Reply.failing(500, "boom"))
    failed = httpx.post(url, json=CHAT)
    assert (failed.status_code, failed.json()) == (500, {"error": "boom"})
    assert all(r.finished and not r.disconnected for r in ollama_server.settled_chat_requests())
    ollama_server.script.error_status = 503
    assert httpx.get(f"{ollama_server.url}/api/tags").status_code == 503


def test_headers_wait_for_the_first_token(ollama_server: OllamaTestServer) -> None:
    ollama_server.script.push(Reply.answer(first_token_delay_s=0.4))
    started = time.monotonic()
    with httpx.stream("POST", f"{ollama_server.url}/api/chat", json=CHAT) as response:
        assert time.monotonic() - started >= 0.35
        assert response.status_code == 200


def test_faults_on_the_wire(ollama_server: OllamaTestServer) -> None:
    url = f"{ollama_server.url}/api/chat"
    ollama_server.script.push(Reply.answer(inject={1: "garbage"}), Reply.answer(omit_done=True))
    assert httpx.post(url, json=CHAT).text.splitlines()[1] == "garbage"
    assert not lines(httpx.post(url, json=CHAT))[-1]["done"]
    ollama_server.script.push(Reply.answer(disconnect_after=2))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(url, json=CHAT)
    recorded = ollama_server.settled_chat_requests()
    assert [r.finished for r in recorded] == [True, True, False]
    assert recorded[0].body == CHAT


def test_instant_script_standalone_on_explicit_port() -> None:
    with start_server(Script.instant(answer="Fast.")) as server:
        second = start_server(port=0)
        try:
            assert second.port != server.port
        finally:
            second.stop()
        started = time.monotonic()
        for _ in range(20):
            body = lines(httpx.post(f"{server.url}/api/chat", json=CHAT))
            text = "".join(c["message"]["content"] for c in body)
            assert text == f"<think>{DEFAULT_REASONING}</think>Fast."
        assert time.monotonic() - started < 5
        assert server.wait_for_requests(20)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/api/version")
