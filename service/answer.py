"""Answering a question: retrieve -> prompt -> stream the model -> answer, citations, log.

``QueryService.prepare`` validates the question, picks the collections the caller may
read, retrieves passages and builds the prompt; ``QueryService.stream`` then yields
``Sources`` first, answer ``Token`` deltas, ``Reasoning`` deltas only when the caller may
read reasoning and asked for it, and one ``Done`` with the result. Model failures are
raised as ``service.errors.ModelError`` subclasses, unless the model failed before
saying anything and the query's ``fallback`` allows an answer without it: ``extract``
(the default) answers with sentences quoted from the passages (one ``Token``), ``sources``
with the passages only; ``Done`` then carries a notice. A query with ``mode="extract"``
gets the extract without any model call. Every generated answer is checked against the
passages it cites (``service.grounding``): the result travels in ``Done``; in strict mode
an answer with unsupported figures is replaced by the extract. Whatever happens (success, failure,
cancellation by a client that went away), one record goes to the reasoning log, and
the application log gets ids, counts and timings, never reasoning text.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import anyio

from ingest.index import (
    META_COLLECTION,
    META_DOCUMENT_ID,
    META_PAGE_END,
    META_PAGE_START,
    META_SOURCE,
    Hit,
)
from ingest.settings import validate_collection_name
from service import metrics
from service.auth import audit
from service.caller import Caller, searchable
from service.errors import BadRequest, ModelError, ModelProtocolError, NoAnswer
from service.grounding import Grounding, Passage, check_answer, extract
from service.llm.base import ChatBackend, ChatMessage, GenerationOptions, ModelDelta, ModelDone
from service.prompt import build_messages, cited_numbers, document_title
from service.reasoning_log import ReasoningLog, ReasoningRecord, new_request_id
from service.retrieval import Retriever
from service.settings import ServiceSettings

log = logging.getLogger(__name__)

SNIPPET_CHARS = 1200
KEEPALIVE_S = 10.0  # while reasoning is hidden, tell streaming clients we are still here
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


@dataclass(slots=True)
class _Run:
    """What one model request produced so far."""

    answer: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    done: ModelDone | None = None
    model_started: float = 0.0
    first_delta: float | None = None
    first_answer: float | None = None
    output: bool = False  # anything (reasoning or answer) arrived


def _ms(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000, 1)


class QueryService:
    """Orchestrates one question; collaborators come in through the constructor."""

    def __init__(
        self,
        retriever: Retriever,
        backend: ChatBackend,
        reasoning_log: ReasoningLog,
        settings: ServiceSettings,
        options: GenerationOptions | None = None,
    ) -> None:
        self._retriever = retriever
        self._backend = backend
        self._reasoning_log = reasoning_log
        self._settings = settings
        self._options = options or GenerationOptions(
            temperature=settings.temperature, max_tokens=settings.max_tokens
        )

    @property
    def model(self) -> str:
        """The model that answers (as configured; the server may report a fuller name)."""
        return self._backend.model

    # -- before the model ---------------------------------------------------------
    async def prepare(self, query: QueryInput, caller: Caller) -> PreparedQuery:
        """Validate, choose collections, retrieve, build the prompt (no model call yet)."""
        started = time.perf_counter()
        started_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        limits = self._settings.limits
        question = validate_question(query.question, limits.question_chars)
        top_k = query.top_k or limits.top_k_default
        if not 1 <= top_k <= limits.top_k_max:
            raise BadRequest(f"top_k must be between 1 and {limits.top_k_max}")
        collections = await self._collections(query.collections, caller)
        hits = await self._retriever.search(
            self._search_text(question, query), collections, top_k, caller=caller
        )
        request_id = new_request_id()
        audit.note_request_id(request_id)  # app log lines of this request carry it too
        citations = [
            citation(n, hit, str(hit.metadata.get(META_COLLECTION, "")))
            for n, hit in enumerate(hits, 1)
        ]
        messages = build_messages(question, hits, query.history, query.extra_instructions)
        return PreparedQuery(
            request_id=request_id,
            caller=caller,
            query=query,
            question=question,
            collections=collections,
            citations=citations,
            messages=messages,
            send_reasoning=query.include_reasoning and caller.may_read_reasoning,
            started=started,
            started_at=started_at,
            retrieval_ms=round((time.perf_counter() - started) * 1000, 1),
            passages=tuple(Passage(c.n, h.text.strip(), c.score) for c, h in zip(citations, hits)),
        )

    @staticmethod
    def _search_text(question: str, query: QueryInput) -> str:
        """A follow-up is searched together with the user's previous question."""
        earlier = [m.content for m in query.history if m.role == "user" and m.content.strip()]
        return f"{earlier[-1].strip()}\n{question}" if earlier else question

    async def _collections(self, requested: Sequence[str] | None, caller: Caller) -> list[str]:
        """Requested names (validated) or every readable collection; never a forbidden one."""
        if requested:
            for name in requested:
                try:
                    validate_collection_name(name)
                except ValueError as exc:
                    raise BadRequest(str(exc)) from None
            return searchable(caller, requested, ())
        return searchable(caller, None, await self._retriever.collection_names())

    # -- the model ------------------------------------------------------------------
    async def stream(self, prepared: PreparedQuery) -> AsyncIterator[QueryEvent]:
        """``Sources``, then deltas, then ``Done``; raises ``ModelError`` on model faults."""
        yield Sources(prepared.request_id, prepared.citations)
        run = _Run(model_started=time.perf_counter())
        if prepared.query.mode == "extract":
            quoted = self._extract_result(prepared, run, None)
            if quoted.answer:
                yield Token(quoted.answer)
            self._record(prepared, run, "extract", quoted)
            yield Done(quoted)
            return
        status = "cancelled"
        result: QueryResult | None = None
        last_sent = run.model_started
        deltas = self._backend.stream_chat(prepared.messages, self._options)
        try:
            try:
                async for item in deltas:
                    if isinstance(item, ModelDone):
                        run.done = item
                        continue
                    event: QueryEvent | None = self._take(run, item, prepared.send_reasoning)
                    now = time.perf_counter()
                    if event is None and now - last_sent >= KEEPALIVE_S:
                        event = KeepAlive()
                    if event is not None:
                        last_sent = now
                        yield event
                if run.done is None:
                    raise ModelProtocolError("the model stream ended without its final message")
                if not "".join(run.answer).strip():
                    raise NoAnswer("the model returned an empty answer")
            except ModelError as exc:
                status = exc.code
                fallback = prepared.query.fallback
                if fallback == "none" or run.output:
                    raise
                if fallback == "extract":
                    result = self._extract_result(prepared, run, _notice(exc, extracted=True))
                else:
                    result = self._result(prepared, run, notice=exc)
            else:
                status = "ok"
                result = self._checked(prepared, run)
        finally:
            await _close(deltas)
            self._record(prepared, run, status, result)
        if result is not None:
            if result.mode == "extract" and not run.output and result.answer:
                yield Token(result.answer)
            yield Done(result)

    @staticmethod
    def _take(run: _Run, item: ModelDelta, send_reasoning: bool) -> Token | Reasoning | None:
        now = time.perf_counter()
        if run.first_delta is None:
            run.first_delta = now
        run.output = True
        if item.kind == "reasoning":
            run.reasoning.append(item.text)
            return Reasoning(item.text) if send_reasoning else None
        text = item.text if run.answer else item.text.lstrip()
        if not text:
            return None
        if run.first_answer is None:
            run.first_answer = now
        run.answer.append(text)
        return Token(text)

    async def answer(self, prepared: PreparedQuery) -> QueryResult:
        """Run the model to the end and return the whole result (non-streaming)."""
        async for event in self.stream(prepared):
            if isinstance(event, Done):
                return event.result
        raise ModelProtocolError("the answer stream ended without a result")  # pragma: no cover

    # -- extracts and the grounding check ------------------------------------------------
    def _extract_result(
        self,
        prepared: PreparedQuery,
        run: _Run,
        notice: dict[str, str] | None,
        grounding: Grounding | None = None,
    ) -> QueryResult:
        """The extract as the answer (``mode="extract"``)."""
        started = time.perf_counter()
        settings = self._settings.grounding
        quoted = extract(
            prepared.question,
            prepared.passages,
            max_quotes=settings.extract_sentences,
            max_chars=settings.extract_chars,
        )
        extract_ms = round((time.perf_counter() - started) * 1000, 2)
        base = self._result(prepared, run)
        if notice is None:
            notice = {
                "code": "extract",
                "message": "Extract as asked: sentences quoted from the documents, no model"
                " answer.",
            }
        return QueryResult(
            request_id=base.request_id,
            answer=quoted.text,
            citations=base.citations,
            cited=quoted.cited,
            model="",
            usage=base.usage,
            timings={**base.timings, "extract_ms": extract_ms},
            notice=notice,
            reasoning=base.reasoning,
            mode="extract",
            grounding=grounding,
        )

    def _checked(self, prepared: PreparedQuery, run: _Run) -> QueryResult:
        """The model's answer with its grounding; the extract instead in strict mode."""
        result = self._result(prepared, run)
        started = time.perf_counter()
        # each passage as the prompt showed it: under its heading, the document's title
        titles = {c.n: c.title for c in prepared.citations}
        passages = {p.n: f"{titles.get(p.n, '')}\n{p.text}" for p in prepared.passages}
        grounding = check_answer(result.answer, passages, prepared.question)
        grounding_ms = round((time.perf_counter() - started) * 1000, 2)
        timings = {**result.timings, "grounding_ms": grounding_ms}
        if self._settings.grounding.strict and any(
            u.kind == "figure" for u in grounding.unsupported
        ):
            notice = {
                "code": "grounding_failed",
                "message": f"The model's answer stated {_figures(grounding)} found in none of"
                " its sources; showing sentences quoted from the documents instead.",
            }
            replaced = self._extract_result(prepared, run, notice, grounding)
            return _with(replaced, timings={**replaced.timings, **timings})
        return _with(result, grounding=grounding, timings=timings)

    # -- results and records ---------------------------------------------------------
    def _result(
        self, prepared: PreparedQuery, run: _Run, notice: ModelError | None = None
    ) -> QueryResult:
        answer = "" if notice else "".join(run.answer).strip()
        done = run.done
        usage = {
            "prompt_tokens": done.prompt_tokens if done else 0,
            "completion_tokens": done.completion_tokens if done else 0,
            "reasoning_chars": sum(len(t) for t in run.reasoning),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return QueryResult(
            request_id=prepared.request_id,
            answer=answer,
            citations=prepared.citations,
            cited=cited_numbers(answer, len(prepared.citations)),
            model=done.model if done else self._backend.model,
            usage=usage,
            timings=self._timings(prepared, run),
            notice=_notice(notice) if notice else None,
            reasoning="".join(run.reasoning) if prepared.send_reasoning else None,
            mode="sources" if notice else "model",
        )

    @staticmethod
    def _timings(prepared: PreparedQuery, run: _Run) -> dict[str, float]:
        now = time.perf_counter()
        timings = {
            "retrieval_ms": prepared.retrieval_ms,
            "first_token_ms": _ms(prepared.started, run.first_delta),
            "reasoning_ms": _ms(run.first_delta or run.model_started, run.first_answer),
            "first_answer_token_ms": _ms(prepared.started, run.first_answer),
            "model_ms": _ms(run.model_started, now),
            "total_ms": _ms(prepared.started, now),
        }
        return {name: value for name, value in timings.items() if value is not None}

    def _record(
        self, prepared: PreparedQuery, run: _Run, status: str, result: QueryResult | None
    ) -> None:
        """One reasoning-log record per model request; ids and numbers to the app log and
        the metrics (``result``: what the caller got; None when it got an error)."""
        timings = self._timings(prepared, run)
        metrics.note_answer(
            status,
            result,
            model=self._backend.model,
            model_started=run.model_started,
            first_delta=run.first_delta,
            done=run.done,
        )
        done = run.done
        record = ReasoningRecord(
            request_id=prepared.request_id,
            time=prepared.started_at,
            caller_id=prepared.caller.id,
            caller_name=prepared.caller.name,
            collections=prepared.collections,
            question=prepared.question,
            model=done.model if done else self._backend.model,
            reasoning="".join(run.reasoning),
            status=status,
            usage={
                "prompt_tokens": done.prompt_tokens if done else 0,
                "completion_tokens": done.completion_tokens if done else 0,
                "reasoning_chars": sum(len(t) for t in run.reasoning),
                "answer_chars": sum(len(t) for t in run.answer),
            },
            durations_ms=timings,
        )
        try:
            self._reasoning_log.write(record)
        except OSError as exc:
            log.error("request %s: cannot write the reasoning log: %s", prepared.request_id, exc)
        log.info(
            "request %s caller=%s collections=%s passages=%d status=%s first_token_ms=%s"
            " total_ms=%s",
            prepared.request_id,
            prepared.caller.id,
            ",".join(prepared.collections),
            len(prepared.citations),
            status,
            timings.get("first_token_ms"),
            timings.get("total_ms"),
            # JSON logs (service.logjson): fields; the question only where explicitly enabled
            extra={
                "request_id": prepared.request_id,
                "caller": prepared.caller.id,
                "status": status,
                "timings": timings,
                "question": prepared.question,
            },
        )


def _notice(exc: ModelError, extracted: bool = False) -> dict[str, str]:
    shown = "sentences quoted from the documents" if extracted else "the retrieved passages"
    return {
        "code": exc.code,
        "message": f"No model answered ({exc.message}); showing {shown} instead.",
    }


def _figures(grounding: Grounding) -> str:
    figures = [u.text for u in grounding.unsupported if u.kind == "figure"]
    shown = ", ".join(figures[:3]) + (", ..." if len(figures) > 3 else "")
    return f"{len(figures)} figure(s) ({shown})"


def _with(result: QueryResult, **changes: Any) -> QueryResult:
    return replace(result, **changes)


async def _close(stream: Any) -> None:
    """Close the backend stream (cancelling its server request), even while cancelled."""
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        return
    with anyio.move_on_after(5, shield=True):
        try:
            await aclose()
        except Exception as exc:  # already failed; the close only tidies up
            log.debug("closing the model stream: %s", type(exc).__name__)
