"""Wire access control into an app: the key gate, the audit log, hardening, error headers.

``install_access(app, settings)`` is called once by ``create_app``. Middleware order, outer
to inner: audit (sees every final status, 413s and CORS preflights included) -> security
headers -> CORS (allow-list; absent by default) -> body limit -> the app. The auth
dependency (``service.api.deps.require_caller``) finds the gate at ``app.state.access``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from service.auth.access import AccessControl, open_access
from service.auth.audit import AuditLog, AuditMiddleware
from service.auth.hardening import BodyLimitMiddleware, SecurityHeadersMiddleware, add_cors
from service.errors import AuthError, RateLimited, ServiceError
from service.settings import ServiceSettings

MIB = 1024 * 1024


def install_access(app: Any, settings: ServiceSettings) -> AccessControl:
    """Open the key store (start-up checks and warnings), add middleware and handlers."""
    from service.reasoning_log import new_request_id

    access = open_access(settings)
    app.state.access = access
    app.add_middleware(
        BodyLimitMiddleware,
        json_bytes=settings.limits.body_bytes,
        upload_bytes=int(settings.limits.upload_mb * MIB),
    )
    add_cors(app, settings.security.cors_origins)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(
        AuditMiddleware, log=AuditLog(settings.audit_dir), new_request_id=new_request_id
    )
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(RateLimited, _rate_limited)
    return access


def _body(exc: ServiceError) -> dict[str, Any]:
    return {"error": exc.to_dict()}


async def _auth_error(request: Request, exc: Exception) -> JSONResponse:
    """401 with ``WWW-Authenticate: Bearer`` (RFC 6750); 403 as is."""
    assert isinstance(exc, AuthError)
    headers = {"WWW-Authenticate": 'Bearer realm="inhouse"'} if exc.status == 401 else None
    return JSONResponse(_body(exc), status_code=exc.status, headers=headers)


async def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    """429 with ``Retry-After`` in seconds."""
    assert isinstance(exc, RateLimited)
    retry_after = int(exc.detail.get("retry_after", 1))
    return JSONResponse(
        _body(exc), status_code=exc.status, headers={"Retry-After": str(retry_after)}
    )
