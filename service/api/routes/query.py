"""``POST /v1/query``: a cited answer, as JSON or as Server-Sent Events.

SSE events, in order: ``sources`` (right after retrieval), ``token`` deltas,
``reasoning`` deltas (only when asked for and the key has ``reasoning:read``), then
``done`` or ``error`` ({code, message}). Comment lines keep quiet streams alive. ``done``
carries ``mode`` (model / extract / sources), the final ``answer`` and, for generated
answers, ``grounding``. Tokens already sent cannot change: the final answer is the streamed
text with citations attributed after the fact (``grounding.attributed``: inserted marks;
marks to no passage removed), or the extract when strict grounding replaced it; clients
show ``done.answer`` in place of what streamed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ingest.errors import IngestError
from service.answer import QueryService
from service.answer_types import (
    Done,
    PreparedQuery,
    QueryEvent,
    QueryInput,
    Reasoning,
    Sources,
    Token,
)
from service.api.deps import QueryCaller, QueryServiceDep
from service.api.errors import error_payload
from service.api.schemas import ErrorResponse, GroundingModel, QueryRequest, QueryResponse
from service.api.sse import EventStream, comment, event, until_disconnected
from service.errors import ServiceError

log = logging.getLogger(__name__)
router = APIRouter(tags=["query"])

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (403, 404, 422, 502, 503, 504)
}


@router.post(
    "/v1/query",
    response_model=QueryResponse,
    responses={
        200: {
            "description": "The answer (JSON), or with stream=true an event stream.",
            "content": {"text/event-stream": {}},
        },
        **ERRORS,
    },
)
async def query(
    body: QueryRequest,
    request: Request,
    caller: QueryCaller,
    service: QueryServiceDep,
) -> Response:
    """Answer a question from the caller's collections, citing sources as [n]."""
    prepared = await service.prepare(
        QueryInput(
            question=body.question,
            collections=tuple(body.collections) if body.collections else None,
            top_k=body.top_k,
            include_reasoning=body.include_reasoning,
            fallback=body.fallback,
            mode=body.mode,
        ),
        caller,
    )
    headers = {"X-Request-ID": prepared.request_id}
    if body.stream:
        return EventStream(sse_events(service, prepared), headers=headers)
    result = await until_disconnected(request, service.answer(prepared))
    payload = QueryResponse.of(result).model_dump(mode="json")
    return JSONResponse(payload, headers=headers)


def event_frame(item: QueryEvent) -> bytes:
    if isinstance(item, Token):
        return event("token", {"text": item.text})
    if isinstance(item, Reasoning):
        return event("reasoning", {"text": item.text})
    if isinstance(item, Sources):
        citations = [asdict(c) for c in item.citations]
        return event("sources", {"request_id": item.request_id, "citations": citations})
    if isinstance(item, Done):
        result = item.result
        data: dict[str, Any] = {
            "request_id": result.request_id,
            "cited": result.cited,
            "model": result.model,
            "usage": result.usage,
            "timings": result.timings,
            "mode": result.mode,
            "answer": result.answer,
        }
        if result.notice:
            data["notice"] = result.notice
        if result.grounding is not None:
            data["grounding"] = GroundingModel.of(result.grounding).model_dump(mode="json")
        return event("done", data)
    return comment()


async def sse_events(service: QueryService, prepared: PreparedQuery) -> AsyncIterator[bytes]:
    """The query's events as SSE frames; failures end the stream with an ``error`` event."""
    try:
        async for item in service.stream(prepared):
            yield event_frame(item)
    except Exception as exc:
        if not isinstance(exc, ServiceError | IngestError):
            log.error("request %s: stream failed", prepared.request_id, exc_info=exc)
        _, body = error_payload(exc)
        yield event("error", body["error"])
