"""``GET /v1/reasoning/{request_id}``: one request's reasoning (scope ``reasoning:read``).

Only the key that made the request (or an admin) reads its record; for anyone else, as
for a request the key could not have searched, it does not exist (404).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from service.api.deps import ReasoningCaller, ReasoningLogDep
from service.api.schemas import ErrorResponse, ReasoningRecordResponse
from service.caller import SCOPE_ADMIN, Caller
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
    """The reasoning record of the caller's own request (any request's, for an admin)."""
    record = await run_in_threadpool(reasoning_log.get, request_id)
    if record is None or not may_read(caller, record):
        raise NotFound(f"no reasoning recorded for request {request_id!r}")
    return ReasoningRecordResponse.model_validate(record)


def may_read(caller: Caller, record: dict[str, Any]) -> bool:
    """An admin, or the record's own caller while it may still read every collection."""
    if SCOPE_ADMIN in caller.scopes:
        return True
    own = record.get("caller_id") == caller.id
    return own and all(caller.can_read(c) for c in record.get("collections", []))
