"""What a question and its answer are made of: the query as received, the numbered
citations, the prepared query, the result, and the events ``QueryService.stream`` yields.

Also the two checks that turn API input into these: ``validate_question`` and ``citation``
(a retrieved hit as the prompt numbers it).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

from ingest.index import META_DOCUMENT_ID, META_PAGE_END, META_PAGE_START, META_SOURCE, Hit
from service.caller import Caller
from service.errors import BadRequest
from service.grounding import Grounding, Passage
from service.llm.base import ChatMessage
from service.prompt import document_title

SNIPPET_CHARS = 6000  # a passage of up to `passage_chunks` chunks, whole
Fallback = Literal["extract", "sources", "none"]
Mode = Literal["model", "extract", "sources"]


@dataclass(frozen=True, slots=True)
class QueryInput:
    """A question as the API received it."""

    question: str
    collections: tuple[str, ...] | None = None
    top_k: int | None = None
    include_reasoning: bool = False
    fallback: Fallback = "extract"
    mode: Literal["model", "extract"] = "model"  # "extract": no model call at all
    history: tuple[ChatMessage, ...] = ()  # earlier turns of a conversation
    extra_instructions: str = ""


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered source passage, as the prompt showed it to the model."""

    n: int
    document_id: str
    source: str
    title: str
    page: int | None
    page_end: int | None
    snippet: str
    score: float
    collection: str
    chunk_id: str


@dataclass(frozen=True, slots=True)
class PreparedQuery:
    """Everything decided before the model is asked."""

    request_id: str
    caller: Caller
    query: QueryInput
    question: str
    collections: list[str]
    citations: list[Citation]
    messages: list[ChatMessage]
    send_reasoning: bool
    started: float  # perf_counter at arrival
    started_at: str  # ISO time at arrival
    retrieval_ms: float
    passages: tuple[Passage, ...] = ()  # full passage texts, numbered like the citations


@dataclass(frozen=True, slots=True)
class QueryResult:
    request_id: str
    answer: str
    citations: list[Citation]
    cited: list[int]
    model: str
    usage: dict[str, int]
    timings: dict[str, float]
    notice: dict[str, str] | None = None
    reasoning: str | None = None  # only for callers who may read it and asked
    mode: Mode = "model"
    grounding: Grounding | None = None  # generated answers only


@dataclass(frozen=True, slots=True)
class Sources:
    request_id: str
    citations: list[Citation]


@dataclass(frozen=True, slots=True)
class Token:
    text: str


@dataclass(frozen=True, slots=True)
class Reasoning:
    text: str


@dataclass(frozen=True, slots=True)
class KeepAlive:
    pass


@dataclass(frozen=True, slots=True)
class Done:
    result: QueryResult


QueryEvent = Sources | Token | Reasoning | KeepAlive | Done


def validate_question(question: str, max_chars: int) -> str:
    """The question stripped; ``BadRequest`` when empty, too long or not plain text."""
    text = question.strip()
    if not text:
        raise BadRequest("the question is empty")
    if len(text) > max_chars:
        raise BadRequest(
            f"the question is too long ({len(text)} characters; at most {max_chars})",
            max_chars=max_chars,
        )
    if any(unicodedata.category(c) in {"Cc", "Cs"} and c not in "\t\n\r" for c in text):
        raise BadRequest("the question must be plain text (control characters found)")
    return text


def citation(n: int, hit: Hit, collection: str) -> Citation:
    """Passage ``n`` of the prompt as the caller sees it (snippet cut at ``SNIPPET_CHARS``)."""
    meta = hit.metadata
    text = hit.text.strip()
    snippet = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"
    page, page_end = meta.get(META_PAGE_START), meta.get(META_PAGE_END)
    return Citation(
        n=n,
        document_id=str(meta.get(META_DOCUMENT_ID, "")),
        source=str(meta.get(META_SOURCE, "")),
        title=document_title(hit),
        page=int(page) if page is not None else None,
        page_end=int(page_end) if page_end is not None else None,
        snippet=snippet,
        score=round(float(hit.score), 4),
        collection=collection,
        chunk_id=hit.id,
    )
