"""``GET /v1/me``: who the key belongs to and what it may do (the web chat's start-up call)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from service.api.deps import SettingsDep, require_caller
from service.api.schemas import ErrorResponse
from service.caller import SCOPE_INGEST, Caller

router = APIRouter(tags=["identity"])


class MeLimits(BaseModel):
    question_chars: int = Field(description="Longest accepted question.")
    upload_mb: float = Field(description="Largest uploaded file (MiB).")


class MeResponse(BaseModel):
    id: str = Field(description="Key id (safe to show and log).")
    name: str
    scopes: list[str]
    collections: list[str] = Field(description="Collection names the key may read, or ['*'].")
    reasoning: bool = Field(description="Whether the key may read reasoning (reasoning:read).")
    ingest: bool = Field(description="Whether the key may upload into its collections.")
    default_collection: str = Field(description="Where uploads go when no collection exists yet.")
    limits: MeLimits


@router.get("/v1/me", response_model=MeResponse, responses={401: {"model": ErrorResponse}})
async def me(
    caller: Annotated[Caller, Depends(require_caller)], settings: SettingsDep
) -> MeResponse:
    """The calling key's identity, scopes and collections."""
    from ingest.settings import IngestSettings

    return MeResponse(
        id=caller.id,
        name=caller.name,
        scopes=sorted(caller.scopes),
        collections=sorted(caller.collections),
        reasoning=caller.may_read_reasoning,
        ingest=caller.has_scope(SCOPE_INGEST),
        default_collection=IngestSettings(data_dir=settings.data_dir).default_collection,
        limits=MeLimits(
            question_chars=settings.limits.question_chars, upload_mb=settings.limits.upload_mb
        ),
    )
