"""``GET /v1/me``: who the key belongs to and what it may do (the web chat's start-up call)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from service.api.deps import SettingsDep, require_caller
from service.api.schemas import ErrorResponse
from service.caller import ALL_COLLECTIONS, SCOPE_ADMIN, SCOPE_INGEST, Caller

router = APIRouter(tags=["identity"])


class MeLimits(BaseModel):
    question_chars: int = Field(description="Longest accepted question.")
    upload_mb: float = Field(description="Largest uploaded file (MiB).")


class MeResponse(BaseModel):
    id: str = Field(description="Key id, or user:<subject> for a signed-in user (safe to log).")
    name: str
    kind: str = Field("key", description="key, session (company sign-in) or anonymous.")
    scopes: list[str]
    collections: list[str] = Field(description="Collection names the key may read, or ['*'].")
    reasoning: bool = Field(description="Whether the key may read reasoning (reasoning:read).")
    ingest: bool = Field(description="Whether the key may upload into its collections.")
    default_collection: str = Field(description="Where uploads go when no collection exists yet.")
    limits: MeLimits
    writable: list[str] | None = Field(
        None, description="Sessions: the collections uploads may go to (the policy's upload)."
    )
    email: str | None = None
    groups: list[str] | None = Field(None, description="Sessions: the groups the provider sent.")
    csrf_token: str | None = Field(
        None, description="Sessions: send it as X-CSRF-Token on requests that change state."
    )


@router.get("/v1/me", response_model=MeResponse, responses={401: {"model": ErrorResponse}})
async def me(
    request: Request, caller: Annotated[Caller, Depends(require_caller)], settings: SettingsDep
) -> MeResponse:
    """The caller's identity (key or signed-in user), scopes and collections."""
    session = getattr(request.state, "session", None) if caller.kind == "session" else None

    return MeResponse(
        id=caller.id,
        name=caller.name,
        scopes=sorted(caller.scopes),
        collections=sorted(caller.collections),
        reasoning=caller.may_read_reasoning,
        ingest=caller.has_scope(SCOPE_INGEST),
        default_collection=settings.default_collection,
        limits=MeLimits(
            question_chars=settings.limits.question_chars, upload_mb=settings.limits.upload_mb
        ),
        kind=caller.kind,
        writable=writable(caller),
        email=session.email if session else None,
        groups=list(session.groups) if session else None,
        csrf_token=session.csrf if session else None,
    )


def writable(caller: Caller) -> list[str] | None:
    """Where a session may upload (None for keys: their ingest scope says it)."""
    if caller.uploads is None:
        return None
    if SCOPE_ADMIN in caller.scopes:
        return [ALL_COLLECTIONS]
    return sorted(caller.uploads)
