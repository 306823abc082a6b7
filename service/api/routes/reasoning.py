"""``GET /v1/reasoning/{request_id}``: one request's reasoning (scope ``reasoning:read``)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from service.api.deps import ReasoningCaller, ReasoningLogDep
from service.api.schemas import ErrorResponse, ReasoningRecordResponse
from service.errors import NotFound

router = APIRouter(tags=["reasoning"])


@router.get(
    "/v1/reasoning/{request_id}",
    response_model=ReasoningRecordResponse,
    responses={403: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def get_reasoning(
    request_id: str,
    caller: ReasoningCaller,
    reasoning_log: ReasoningLogDep,
) -> ReasoningRecordResponse:
    """The reasoning record of a request, if every collection it searched is readable."""
    record = await run_in_threadpool(reasoning_log.get, request_id)
    if record is None or not all(caller.can_read(c) for c in record.get("collections", [])):
        raise NotFound(f"no reasoning recorded for request {request_id!r}")
    return ReasoningRecordResponse.model_validate(record)
