"""The admin page's API (scope ``admin``): failures, API keys, signed-in sessions.

Key management takes an API key, never a browser session (``require_key_caller``): a
session hijacked or driven by a forged request must not be able to mint long-lived
credentials. Sessions may be listed and ended with either.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from service.api.deps import RetrieverDep, require_key_caller, require_scope
from service.api.schemas import ErrorResponse
from service.auth.keys import KeyRecord, KeyStore
from service.auth.signin import SignIn
from service.caller import SCOPE_ADMIN, SCOPES, Caller
from service.errors import BadRequest, Forbidden, NotFound

router = APIRouter(
    tags=["admin"],
    responses={403: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
AdminCaller = Annotated[Caller, Depends(require_scope(SCOPE_ADMIN))]


async def admin_key_caller(caller: Annotated[Caller, Depends(require_key_caller)]) -> Caller:
    if not caller.has_scope(SCOPE_ADMIN):
        raise Forbidden("this key lacks the 'admin' scope", scope=SCOPE_ADMIN)
    return caller


AdminKeyCaller = Annotated[Caller, Depends(admin_key_caller)]


# -- failures -------------------------------------------------------------------------
class FailedFile(BaseModel):
    collection: str
    path: str
    message: str
    updated_at: str


class FailureGroup(BaseModel):
    code: str = Field(description="Why the files failed (a stable ingest error code).")
    count: int
    files: list[FailedFile]


class FailuresResponse(BaseModel):
    reasons: list[FailureGroup] = Field(description="Most frequent reason first.")


@router.get("/v1/admin/failures", response_model=FailuresResponse)
async def failures(caller: AdminCaller, retriever: RetrieverDep) -> FailuresResponse:
    """Documents that could not be indexed, grouped by reason, with their file names."""
    records = await retriever.failures(await retriever.known_collections())
    groups: dict[str, list[FailedFile]] = {}
    for record in records:
        groups.setdefault(record.error_code or "unknown", []).append(
            FailedFile(
                collection=record.collection,
                path=record.path,
                message=record.error_message or "",
                updated_at=record.updated_at,
            )
        )
    reasons = [FailureGroup(code=c, count=len(f), files=f) for c, f in groups.items()]
    reasons.sort(key=lambda g: (-g.count, g.code))
    return FailuresResponse(reasons=reasons)


# -- API keys -------------------------------------------------------------------------
class KeyModel(BaseModel):
    key_id: str
    name: str
    scopes: list[str]
    collections: list[str]
    created_at: str
    revoked_at: str | None
    active: bool

    @classmethod
    def of(cls, record: KeyRecord) -> KeyModel:
        return cls.model_validate(record.as_dict())


class KeysResponse(BaseModel):
    keys: list[KeyModel]


class KeyCreateRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="Who or what uses the key.")
    scopes: list[str] = Field(min_length=1, max_length=len(SCOPES))
    collections: list[str] = Field(default_factory=lambda: ["*"], max_length=100)


class KeyCreateResponse(BaseModel):
    key: str = Field(description="The key itself: shown this once, never stored.")
    record: KeyModel


def _store(request: Request) -> KeyStore:
    store: KeyStore | None = getattr(request.app.state.access, "store", None)
    if store is None:
        raise NotFound("API keys are off (INHOUSE_AUTH=disabled)")
    return store


@router.get("/v1/admin/keys", response_model=KeysResponse)
async def list_keys(request: Request, caller: AdminKeyCaller) -> KeysResponse:
    """Every API key (never the secrets), revoked ones included. Needs an admin key."""
    records = await run_in_threadpool(_store(request).records)
    return KeysResponse(keys=[KeyModel.of(r) for r in records])


@router.post("/v1/admin/keys", status_code=201, response_model=KeyCreateResponse)
async def create_key(
    request: Request, body: KeyCreateRequest, caller: AdminKeyCaller
) -> KeyCreateResponse:
    """Create a key; the response holds it once. Needs an admin key (not a session)."""
    try:
        new = await run_in_threadpool(
            _store(request).create, body.name, body.scopes, body.collections
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return KeyCreateResponse(key=new.key, record=KeyModel.of(new.record))


@router.delete("/v1/admin/keys/{key_id}", response_model=KeyModel)
async def revoke_key(request: Request, key_id: str, caller: AdminKeyCaller) -> KeyModel:
    """Revoke a key (the next request with it gets 401). Needs an admin key."""
    try:
        record = await run_in_threadpool(_store(request).revoke, key_id)
    except KeyError:
        raise NotFound(f"no key {key_id!r}", key_id=key_id) from None
    return KeyModel.of(record)


# -- sessions -------------------------------------------------------------------------
class SessionModel(BaseModel):
    ref: str = Field(description="Public session id (not the cookie).")
    provider: str
    subject: str
    name: str
    email: str | None
    groups: list[str]
    created_at: str
    last_seen: str
    current: bool = Field(description="The session making this request.")


class SessionsResponse(BaseModel):
    sessions: list[SessionModel]


def _signin(request: Request) -> SignIn:
    signin: SignIn | None = getattr(request.app.state, "signin", None)
    if signin is None:
        raise NotFound("company sign-in is off (INHOUSE_AUTH does not include oidc)")
    return signin


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@router.get("/v1/admin/sessions", response_model=SessionsResponse)
async def list_sessions(request: Request, caller: AdminCaller) -> SessionsResponse:
    """Signed-in users' live sessions."""
    signin = _signin(request)
    mine = getattr(getattr(request.state, "session", None), "ref", None)
    records = await run_in_threadpool(signin.active)
    return SessionsResponse(
        sessions=[
            SessionModel(
                ref=r.ref,
                provider=r.provider,
                subject=r.subject,
                name=r.name,
                email=r.email,
                groups=list(r.groups),
                created_at=_iso(r.created_at),
                last_seen=_iso(r.last_seen),
                current=r.ref == mine,
            )
            for r in records
        ]
    )


@router.delete("/v1/admin/sessions/{ref}", response_model=SessionModel)
async def end_session(request: Request, ref: str, caller: AdminCaller) -> SessionModel:
    """End a session at once (its next request gets 401)."""
    signin = _signin(request)
    record = await run_in_threadpool(signin.end, ref)
    if record is None:
        raise NotFound(f"no session {ref!r}", ref=ref)
    return SessionModel(
        ref=record.ref, provider=record.provider, subject=record.subject, name=record.name,
        email=record.email, groups=list(record.groups), created_at=_iso(record.created_at),
        last_seen=_iso(record.last_seen), current=False,
    )  # fmt: skip
