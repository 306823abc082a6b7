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

The types (query, citations, result, events) live in ``service.answer_types``; turning a
model run into a result (usage, timings, extract, grounding) in ``service.answer_result``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio

from ingest.index import META_COLLECTION
from ingest.settings import validate_collection_name
from service import metrics
from service.answer_result import (
    ModelRun,
    checked_result,
    extract_result,
    failure_notice,
    model_result,
    run_timings,
)
from service.answer_types import (
    Done,
    KeepAlive,
    PreparedQuery,
    QueryEvent,
    QueryInput,
    QueryResult,
    Reasoning,
    Sources,
    Token,
    citation,
    validate_question,
)
from service.auth import audit
from service.caller import Caller, searchable
from service.errors import BadRequest, ModelError, ModelProtocolError, NoAnswer
from service.grounding import Passage
from service.llm.base import ChatBackend, GenerationOptions, ModelDelta, ModelDone
from service.prompt import build_messages
from service.reasoning_log import ReasoningLog, ReasoningRecord, new_request_id
from service.retrieval import Retriever
from service.settings import ServiceSettings

log = logging.getLogger(__name__)

KEEPALIVE_S = 10.0  # while reasoning is hidden, tell streaming clients we are still here


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
        run = ModelRun(model_started=time.perf_counter())
        if prepared.query.mode == "extract":
            quoted = self._extract(prepared, run, None)
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
                    notice = failure_notice(exc, extracted=True)
                    result = self._extract(prepared, run, notice)
                else:
                    result = model_result(prepared, run, self.model, notice=exc)
            else:
                status = "ok"
                result = checked_result(prepared, run, self.model, self._settings.grounding)
        finally:
            await _close(deltas)
            self._record(prepared, run, status, result)
        if result is not None:
            if result.mode == "extract" and not run.output and result.answer:
                yield Token(result.answer)
            yield Done(result)

    @staticmethod
    def _take(run: ModelRun, item: ModelDelta, send_reasoning: bool) -> Token | Reasoning | None:
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

    def _extract(
        self, prepared: PreparedQuery, run: ModelRun, notice: dict[str, str] | None
    ) -> QueryResult:
        return extract_result(prepared, run, self.model, self._settings.grounding, notice)

    # -- records ------------------------------------------------------------------------
    def _record(
        self, prepared: PreparedQuery, run: ModelRun, status: str, result: QueryResult | None
    ) -> None:
        """One reasoning-log record per model request; ids and numbers to the app log and
        the metrics (``result``: what the caller got; None when it got an error)."""
        timings = run_timings(prepared, run)
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
