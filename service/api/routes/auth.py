"""Company sign-in routes: ``/auth/providers``, ``/auth/login``, ``/auth/callback``,
``/auth/logout`` (``INHOUSE_AUTH=oidc`` or ``keys,oidc``; 404 otherwise).

The session cookie (``inhouse_session``) is HttpOnly, SameSite=Lax, Path=/, Secure when
the service is reached over https; the login cookie (``inhouse_login``, the state) lives
ten minutes on /auth only. Sign-in failures answer a short HTML page that says why, never
a token or a claim value.
"""

from __future__ import annotations

import html
import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from service.api.schemas import ErrorResponse
from service.auth.oidc import SignInFailed
from service.auth.signin import LOGIN_COOKIE, SESSION_COOKIE, SignIn, request_caller
from service.errors import AuthError, NotFound

log = logging.getLogger(__name__)
router = APIRouter(tags=["sign-in"])
LOGIN_MAX_AGE_S = 600
HTML: dict[str, object] = {"text/html": {}}


class ProviderModel(BaseModel):
    name: str
    label: str = Field(description="What the sign-in button says.")
    login_url: str


class ProvidersResponse(BaseModel):
    keys: bool = Field(description="Whether API keys are accepted (INHOUSE_AUTH has keys).")
    providers: list[ProviderModel]


class LogoutResponse(BaseModel):
    signed_out: bool
    redirect: str | None = Field(
        None, description="The provider's logout page (RP-initiated logout), when it has one."
    )


def _signin(request: Request) -> SignIn:
    signin: SignIn | None = getattr(request.app.state, "signin", None)
    if signin is None:
        raise NotFound("company sign-in is off (INHOUSE_AUTH does not include oidc)")
    return signin


def _secure(request: Request, signin: SignIn) -> bool:
    return signin.base_url(str(request.base_url)).startswith("https://")


@router.get("/auth/providers", response_model=ProvidersResponse)
async def providers(request: Request) -> ProvidersResponse:
    """How one may sign in here: API keys and/or these identity providers (no auth)."""
    signin: SignIn | None = getattr(request.app.state, "signin", None)
    access = getattr(request.app.state, "access", None)
    keys = bool(access is not None and getattr(access, "keys", False))
    listed = [
        ProviderModel(name=name, label=p.label, login_url=f"/auth/login?provider={name}")
        for name, p in (signin.providers.items() if signin else ())
    ]
    return ProvidersResponse(keys=keys, providers=listed)


@router.get(
    "/auth/login",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {"description": "To the identity provider."},
        401: {"description": "Unknown provider (an HTML page).", "content": HTML},
        404: {"model": ErrorResponse, "description": "Company sign-in is off."},
    },
)
async def login(
    request: Request,
    provider: Annotated[str | None, Query(max_length=32)] = None,
    next: Annotated[str, Query(max_length=500)] = "/",  # noqa: A002 (the usual name)
) -> Response:
    """Start signing in: redirect to the provider (authorization code + PKCE, state, nonce)."""
    signin = _signin(request)
    base = signin.base_url(str(request.base_url))
    try:
        url, state = await signin.start(provider, next, base)
    except SignInFailed as exc:
        return failure_page(exc)
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        LOGIN_COOKIE, state, max_age=LOGIN_MAX_AGE_S, path="/auth", httponly=True,
        samesite="lax", secure=_secure(request, signin),
    )  # fmt: skip
    return response


@router.get(
    "/auth/callback",
    status_code=303,
    response_class=RedirectResponse,
    responses={
        303: {"description": "Signed in: to the chat, with the session cookie."},
        401: {"description": "Sign-in refused (an HTML page says why).", "content": HTML},
        403: {"description": "Signed in at the provider, refused here.", "content": HTML},
        404: {"model": ErrorResponse, "description": "Company sign-in is off."},
    },
)
async def callback(
    request: Request,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str, Query(max_length=4000)] = "",
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Complete sign-in: check state, exchange the code, verify the ID token, open a session."""
    signin = _signin(request)
    base = signin.base_url(str(request.base_url))
    if error is not None:
        return failure_page(SignInFailed(f"the identity provider declined the sign-in ({error})"))
    if not state or not code:
        return failure_page(SignInFailed("the sign-in response lacks its state or code"))
    try:
        token, _record, next_url = await signin.complete(
            state, request.cookies.get(LOGIN_COOKIE), code, base
        )
    except AuthError as exc:
        log.info("sign-in refused: %s", exc.message)
        page = failure_page(exc)
        page.delete_cookie(LOGIN_COOKIE, path="/auth")
        return page
    response = RedirectResponse(next_url, status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path="/auth")
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(signin.absolute_s), path="/", httponly=True,
        samesite="lax", secure=_secure(request, signin),
    )  # fmt: skip
    return response


@router.post(
    "/auth/logout",
    response_model=LogoutResponse,
    responses={
        403: {"model": ErrorResponse, "description": "Cross-origin or no CSRF token."},
        404: {"model": ErrorResponse, "description": "Company sign-in is off."},
    },
)
async def logout(request: Request) -> JSONResponse:
    """Sign out: end the session here, and name the provider's logout page when it has one.

    Needs the session's ``X-CSRF-Token`` (from ``GET /v1/me``), like every state change.
    """
    signin = _signin(request)
    redirect = None
    try:
        caller = await request_caller(signin, request)
    except AuthError as exc:
        if exc.status == 403:
            raise
        caller = None  # already ended or expired: signing out again is fine
    record = getattr(request.state, "session", None)
    if caller is not None and record is not None:
        redirect = await signin.logout(record, signin.base_url(str(request.base_url)))
        log.info("signed out: %s, session %s", record.subject, record.ref)
    response = JSONResponse(LogoutResponse(signed_out=True, redirect=redirect).model_dump())
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def failure_page(exc: AuthError) -> HTMLResponse:
    """A plain page that says why sign-in failed, with a way back."""
    message = html.escape(exc.message)
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Sign-in failed · Inhouse"
        f"</title><main><h1>Sign-in failed</h1><p id=reason>{message}</p>"
        '<p><a href="/">Back to Inhouse</a></p></main></html>'
    )
    return HTMLResponse(body, status_code=exc.status, headers={"Cache-Control": "no-store"})
