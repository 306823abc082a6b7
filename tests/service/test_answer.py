"""QueryService with a scripted backend and an in-memory retriever: event order,
fallback rules, keep-alives, cancellation and collection selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

import service.answer as answer_module
from ingest.index import META_COLLECTION, META_DOCUMENT_ID, META_TITLE, Hit
from service.answer import QueryService
from service.answer_types import Done, KeepAlive, QueryInput, Reasoning, Sources, Token
from service.caller import ANONYMOUS, Caller
from service.errors import Forbidden, ModelUnavailable, NoAnswer
from service.llm.base import ModelDelta, ModelDone
from service.reasoning_log import ReasoningLog
from tests.service.api_support import ScriptedBackend, service_settings

DONE = ModelDone(model="fake-r1", prompt_tokens=7, completion_tokens=3)
HR_ONLY = Caller("k1", "hr reader", frozenset({"query"}), frozenset({"hr"}))


class MemoryRetriever:
    """Two collections, one hit each; records what was searched."""

    def __init__(self) -> None:
        self.searched: list[list[str]] = []

    async def collection_names(self) -> list[str]:
        return ["finance", "hr"]

    async def search(self, text: str, collections: list[str], top_k: int, **kw: Any) -> list[Hit]:
        self.searched.append(list(collections))
        return [
            Hit(
                id=f"{name}:1",
                text=f"{name} passage",
                metadata={META_COLLECTION: name, META_DOCUMENT_ID: name, META_TITLE: name},
                score=0.5,
            )
            for name in collections
        ][:top_k]


def make(tmp_path: Path, items: list[Any]) -> tuple[QueryService, ScriptedBackend, ReasoningLog]:
    backend = ScriptedBackend(items)
    log = ReasoningLog(tmp_path, 30)
    service = QueryService(
        MemoryRetriever(),  # type: ignore[arg-type]
        backend,
        log,
        service_settings(tmp_path),
    )
    return service, backend, log


def run(service: QueryService, query: QueryInput, caller: Caller = ANONYMOUS) -> list[Any]:
    async def go() -> list[Any]:
        prepared = await service.prepare(query, caller)
        return [event async for event in service.stream(prepared)]

    return anyio.run(go)


def test_events_in_order_and_answer_whitespace_trimmed(tmp_path: Path) -> None:
    service, _, log = make(
        tmp_path,
        [
            ModelDelta("reasoning", "hmm"),
            ModelDelta("answer", "\n\n  "),
            ModelDelta("answer", " Yes [2]."),
            DONE,
        ],
    )

    events = run(service, QueryInput("Is it?", include_reasoning=True))

    assert [type(e) for e in events] == [Sources, Reasoning, Token, Done]
    assert events[2] == Token("Yes [2].")
    result = events[-1].result
    assert result.answer == "Yes [2]." and result.cited == [2] and result.reasoning == "hmm"
    assert result.usage == {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_tokens": 10,
        "reasoning_chars": 3,
    }
    record = log.get(result.request_id)
    assert record is not None and record["reasoning"] == "hmm" and record["status"] == "ok"


def test_reasoning_is_withheld_from_callers_without_the_scope(tmp_path: Path) -> None:
    service, _, log = make(
        tmp_path, [ModelDelta("reasoning", "hmm"), ModelDelta("answer", "A"), DONE]
    )

    events = run(service, QueryInput("Q?", include_reasoning=True), HR_ONLY)

    assert not [e for e in events if isinstance(e, Reasoning)]
    assert events[-1].result.reasoning is None
    assert log.get(events[-1].result.request_id)["reasoning"] == "hmm"  # type: ignore[index]


def test_hidden_reasoning_sends_keep_alives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(answer_module, "KEEPALIVE_S", 0.0)
    service, _, _ = make(
        tmp_path,
        [
            ModelDelta("reasoning", "a"),
            ModelDelta("reasoning", "b"),
            ModelDelta("answer", "A"),
            DONE,
        ],
    )

    events = run(service, QueryInput("Q?"))

    assert [type(e) for e in events] == [Sources, KeepAlive, KeepAlive, Token, Done]


def test_fallback_applies_only_before_the_model_said_anything(tmp_path: Path) -> None:
    service, _, _ = make(tmp_path, [ModelUnavailable("down")])
    events = run(service, QueryInput("Q?", fallback="sources"))
    assert [type(e) for e in events] == [Sources, Done]
    assert events[-1].result.notice["code"] == "model_unavailable"

    late, _, log = make(tmp_path, [ModelDelta("reasoning", "x"), ModelUnavailable("down")])
    with pytest.raises(ModelUnavailable):
        run(late, QueryInput("Q?", fallback="sources"))


def test_a_stream_without_answer_text_is_no_answer(tmp_path: Path) -> None:
    service, _, _ = make(tmp_path, [ModelDelta("reasoning", "only thoughts"), DONE])

    with pytest.raises(NoAnswer):
        run(service, QueryInput("Q?"))


def test_closing_the_stream_early_closes_the_backend_and_logs_cancelled(tmp_path: Path) -> None:
    service, backend, log = make(
        tmp_path,
        [
            ModelDelta("reasoning", "partial"),
            ModelDelta("answer", "A"),
            ModelDelta("answer", "B"),
            DONE,
        ],
    )

    async def go() -> str:
        prepared = await service.prepare(QueryInput("Q?"), ANONYMOUS)
        stream = service.stream(prepared)
        async for event in stream:
            if isinstance(event, Token):
                break
        await stream.aclose()  # type: ignore[attr-defined]
        return prepared.request_id

    request_id = anyio.run(go)

    assert backend.closed
    record = log.get(request_id)
    assert (
        record is not None and record["status"] == "cancelled" and record["reasoning"] == "partial"
    )


def test_collections_default_to_readable_ones_and_forbidden_ones_are_refused(
    tmp_path: Path,
) -> None:
    service, _, _ = make(tmp_path, [ModelDelta("answer", "A"), DONE])
    retriever = service._retriever  # type: ignore[attr-defined]

    run(service, QueryInput("Q?"), HR_ONLY)
    assert retriever.searched[-1] == ["hr"]
    with pytest.raises(Forbidden):
        run(service, QueryInput("Q?", collections=("finance",)), HR_ONLY)
    assert len(retriever.searched) == 1  # refused before any search


def test_model_failure_answers_with_an_extract_by_default(tmp_path: Path) -> None:
    service, _, log = make(tmp_path, [ModelUnavailable("down")])

    events = run(service, QueryInput("What does the finance passage say?"))

    assert [type(e) for e in events] == [Sources, Token, Done]
    result = events[-1].result
    assert result.mode == "extract" and result.grounding is None
    assert result.answer == events[1].text
    assert result.answer.startswith("“finance passage” [1]")
    assert result.cited == [1, 2] or result.cited == [1]
    assert result.notice is not None and result.notice["code"] == "model_unavailable"
    assert "quoted from the documents" in result.notice["message"]
    assert "extract_ms" in result.timings
    assert log.get(result.request_id)["status"] == "model_unavailable"  # type: ignore[index]


def test_fallback_none_raises_and_sources_is_mode_sources(tmp_path: Path) -> None:
    service, _, _ = make(tmp_path, [ModelUnavailable("down")])
    with pytest.raises(ModelUnavailable):
        run(service, QueryInput("Q?", fallback="none"))
    events = run(service, QueryInput("Q?", fallback="sources"))
    assert events[-1].result.mode == "sources" and events[-1].result.answer == ""


def test_extract_mode_asks_no_model(tmp_path: Path) -> None:
    service, backend, _ = make(tmp_path, [ModelDelta("answer", "never sent"), DONE])

    events = run(service, QueryInput("hr passage?", mode="extract"))

    assert backend.requests == []
    assert [type(e) for e in events] == [Sources, Token, Done]
    result = events[-1].result
    assert result.mode == "extract" and "[" in result.answer
    assert result.notice is not None and result.notice["code"] == "extract"


def test_generated_answers_carry_their_grounding(tmp_path: Path) -> None:
    service, _, _ = make(tmp_path, [ModelDelta("answer", "It grew 40% [1] and 3 items [5]."), DONE])

    result = run(service, QueryInput("Q?"))[-1].result

    assert result.mode == "model" and result.grounding is not None
    assert [u.text for u in result.grounding.unsupported] == ["40%", "3"]
    assert result.grounding.invalid_citations == [5]
    assert "grounding_ms" in result.timings


def test_strict_grounding_replaces_an_answer_with_unsupported_figures(tmp_path: Path) -> None:
    backend = ScriptedBackend([ModelDelta("answer", "It grew 40% [1]."), DONE])
    service = QueryService(
        MemoryRetriever(),  # type: ignore[arg-type]
        backend,
        ReasoningLog(tmp_path, 30),
        service_settings(tmp_path, grounding={"strict": True}),
    )

    events = run(service, QueryInput("finance passage?"))

    assert [type(e) for e in events] == [Sources, Token, Done]  # the model's tokens streamed
    result = events[-1].result
    assert result.mode == "extract" and "40%" not in result.answer
    assert result.answer.startswith("“")
    assert result.notice is not None and result.notice["code"] == "grounding_failed"
    assert "40%" in result.notice["message"]
    assert result.grounding is not None and result.grounding.unsupported[0].text == "40%"
