"""Wire access control into an app: the key gate, the audit log, hardening, error headers.

``install_access(app, settings)`` is called once by ``create_app``. Middleware order, outer
to inner: proxy headers (only from ``INHOUSE_SECURITY__TRUSTED_PROXIES``) -> audit (sees
every final status, 413s and CORS preflights included) -> security headers -> CORS
(allow-list; absent by default) -> body limit (a declared oversize is refused unread) ->
auth gate (a key before any body is read; upload slots) -> the app. The auth dependency
(``service.api.deps.require_caller``) finds the gate at ``app.state.access`` and reuses a
caller the gate already authenticated.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from service.auth.access import AccessControl, open_access
from service.auth.audit import AuditLog, AuditMiddleware
from service.auth.gate import AuthGateMiddleware, ProxyHeadersMiddleware
from service.auth.hardening import BodyLimitMiddleware, SecurityHeadersMiddleware, add_cors
from service.auth.signin import open_signin
from service.errors import AuthError, RateLimited, ServiceError
from service.settings import ServiceSettings

MIB = 1024 * 1024


def install_access(app: Any, settings: ServiceSettings) -> AccessControl:
    """Open the key store (start-up checks and warnings), add middleware and handlers."""
    from service.reasoning_log import new_request_id

    access = open_access(settings)
    app.state.access = access
    app.state.signin = open_signin(settings)  # company sign-in, when INHOUSE_AUTH has oidc
    app.add_middleware(
        AuthGateMiddleware,
        uploads_per_key=settings.limits.concurrent_uploads_per_key,
        uploads_total=settings.limits.concurrent_uploads,
    )
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
    app.add_middleware(ProxyHeadersMiddleware, trusted=settings.security.trusted_proxies)
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(RateLimited, _rate_limited)
    document_errors(app)
    return access


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code."},
                "message": {"type": "string"},
                "detail": {"type": "object"},
            },
        }
    },
}
SECURED_ERRORS = {
    "401": ("Missing, unknown or revoked API key (code unauthorized).", "WWW-Authenticate"),
    "403": ("The key lacks the scope or the collection (code forbidden).", None),
    "429": ("Over the key's rate limit (code rate_limited).", "Retry-After"),
}
UPLOAD_PATH = "/v1/collections/{name}/documents"
UPLOAD_ERRORS: dict[str, tuple[str, str | None]] = {
    "429": (
        "Over the key's rate limit (rate_limited) or concurrent uploads (too_many_uploads).",
        "Retry-After",
    ),
    "503": ("Too many uploads in progress service-wide (code uploads_busy).", "Retry-After"),
}


def document_errors(app: Any) -> None:
    """Make the OpenAPI schema tell the truth about errors.

    Every error leaves in one shape, ``{"error": {"code", "message"}}``: FastAPI's default
    422 ``HTTPValidationError`` is replaced by it; operations behind the key get 401, 403
    and 429; operations with a body get 413.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema: dict[str, Any] = build()
            _rewrite_errors(schema)
        result: dict[str, Any] = app.openapi_schema
        return result

    app.openapi = openapi


def _rewrite_errors(schema: dict[str, Any]) -> None:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorResponse", ERROR_SCHEMA)
    ref = {"$ref": "#/components/schemas/ErrorResponse"}

    def error(description: str, header: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": ref}},
        }
        if header:
            out["headers"] = {header: {"schema": {"type": "string"}}}
        return out

    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if "422" in responses:
                responses["422"] = error("Invalid request (code invalid_request).")
            if path == UPLOAD_PATH and method == "post":
                for status, (description, header) in UPLOAD_ERRORS.items():
                    responses[status] = error(description, header)
            if operation.get("security"):
                for status, (description, header) in SECURED_ERRORS.items():
                    responses.setdefault(status, error(description, header))
            if "requestBody" in operation:
                responses.setdefault("413", error("Body over the size limit (payload_too_large)."))
    if "#/components/schemas/HTTPValidationError" not in json.dumps(schema["paths"]):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


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
