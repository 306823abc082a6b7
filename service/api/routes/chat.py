"""``POST /v1/chat/completions``: OpenAI-compatible chat over the caller's documents.

The official openai SDK works unchanged (``base_url=<service>/v1``). The last message
is the question; earlier user/assistant turns are the conversation (assistant turns
reach the model without reasoning); system/developer messages become extra
instructions in the user turn (R1 takes no system prompt). ``content`` is the answer
only; the numbered sources travel in ``inhouse_sources`` (in the first chunk when
streaming). When no model can answer, ``content`` is the extract (sentences quoted from
the passages) and ``inhouse_mode``/``inhouse_notice`` say so; a generated answer's
figure check travels in ``inhouse_grounding`` (in the last chunk when streaming). When
the final answer differs from the streamed deltas (citations attributed after the fact,
or strict grounding replaced it), the last chunk also carries it whole in ``inhouse_answer``.
Extensions in the body: ``collections``, ``top_k``, ``fallback``, ``mode``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ingest.errors import IngestError
from service.answer import QueryService
from service.answer_types import Done, PreparedQuery, QueryInput, Sources, Token
from service.api.deps import QueryCaller, QueryServiceDep
from service.api.errors import error_payload
from service.api.routes.query import ERRORS
from service.api.schemas import (
    ChatChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessageIn,
    ChatResponseMessage,
    ChatUsage,
    CitationModel,
    GroundingModel,
    Notice,
)
from service.api.sse import EventStream, comment, event, until_disconnected
from service.errors import BadRequest, ServiceError
from service.llm.base import ChatMessage

log = logging.getLogger(__name__)
router = APIRouter(tags=["openai"])


def message_text(message: ChatMessageIn) -> str:
    """Text of a message; string content or text parts (images and the like: 422)."""
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    texts = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise BadRequest(f"only text content is supported, not {part.type!r}")
        texts.append(part.text)
    return "\n".join(texts)


def to_query(body: ChatCompletionRequest) -> QueryInput:
    """Split OpenAI messages into instructions, earlier turns and the question."""
    *earlier, last = body.messages
    if last.role != "user":
        raise BadRequest("the last message must come from the user")
    instructions: list[str] = []
    history: list[ChatMessage] = []
    for message in earlier:
        text = message_text(message)
        if message.role in ("system", "developer"):
            instructions.append(text)
        elif message.role == "user":
            history.append(ChatMessage("user", text))
        elif message.role == "assistant":
            history.append(ChatMessage("assistant", text))
        else:
            raise BadRequest("tool messages are not supported")
    return QueryInput(
        question=message_text(last),
        collections=tuple(body.collections) if body.collections else None,
        top_k=body.top_k,
        fallback=body.fallback,
        mode=body.mode,
        history=tuple(history),
        extra_instructions="\n".join(t for t in instructions if t.strip()),
    )


@router.post("/v1/chat/completions", response_model=ChatCompletionResponse, responses=ERRORS)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    caller: QueryCaller,
    service: QueryServiceDep,
) -> Response:
    """OpenAI-style chat completion grounded in the caller's collections."""
    prepared = await service.prepare(to_query(body), caller)
    headers = {"X-Request-ID": prepared.request_id}
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = openai_chunks(service, prepared, created, include_usage)
        return EventStream(chunks, headers=headers)
    result = await until_disconnected(request, service.answer(prepared))
    response = ChatCompletionResponse(
        id=completion_id(prepared),
        created=created,
        model=result.model,
        choices=[ChatChoice(message=ChatResponseMessage(content=result.answer))],
        usage=ChatUsage(
            prompt_tokens=result.usage["prompt_tokens"],
            completion_tokens=result.usage["completion_tokens"],
            total_tokens=result.usage["total_tokens"],
        ),
        inhouse_request_id=result.request_id,
        inhouse_sources=[CitationModel.of(c) for c in result.citations],
        inhouse_mode=result.mode,
        inhouse_notice=Notice(**result.notice) if result.notice else None,
        inhouse_grounding=GroundingModel.of(result.grounding) if result.grounding else None,
    )
    return JSONResponse(response.model_dump(mode="json"), headers=headers)


def completion_id(prepared: PreparedQuery) -> str:
    return f"chatcmpl-{prepared.request_id}"


async def openai_chunks(
    service: QueryService, prepared: PreparedQuery, created: int, include_usage: bool
) -> AsyncIterator[bytes]:
    """``chat.completion.chunk`` frames, then ``[DONE]``; a failure sends ``{"error": ...}``."""
    model = service.model

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        frame = {
            "id": completion_id(prepared),
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return event(None, json.dumps(frame, ensure_ascii=False))

    streamed = ""
    try:
        async for item in service.stream(prepared):
            if isinstance(item, Sources):
                sources = [asdict(c) for c in item.citations]
                yield chunk(
                    {"role": "assistant", "content": ""},
                    inhouse_request_id=prepared.request_id,
                    inhouse_sources=sources,
                )
            elif isinstance(item, Token):
                streamed += item.text
                yield chunk({"content": item.text})
            elif isinstance(item, Done):
                result = item.result
                model = result.model or model
                extra: dict[str, Any] = {"inhouse_mode": result.mode}
                if result.notice:
                    extra["inhouse_notice"] = result.notice
                if result.grounding is not None:
                    grounding = GroundingModel.of(result.grounding).model_dump(mode="json")
                    extra["inhouse_grounding"] = grounding
                if streamed and result.answer != streamed.strip():
                    # strict mode replaced it, or citations were attributed after the fact
                    extra["inhouse_answer"] = result.answer
                yield chunk({}, "stop", **extra)
                if include_usage:
                    usage = {k: item.result.usage[k] for k in ChatUsage.model_fields}
                    frame = {
                        "id": completion_id(prepared),
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                    yield event(None, json.dumps(frame))
            else:  # reasoning never reaches chat content; keep-alives become comments
                yield comment()
        yield event(None, "[DONE]")
    except Exception as exc:
        if not isinstance(exc, ServiceError | IngestError):
            log.error("request %s: stream failed", prepared.request_id, exc_info=exc)
        _, body = error_payload(exc)
        error = dict(body["error"], type=body["error"]["code"])
        yield event(None, json.dumps({"error": error}))
