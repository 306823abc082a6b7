"""One place that turns exceptions into HTTP errors: ``{"error": {"code", "message"}}``.

``ServiceError`` carries its own status; ingest's ``IngestError`` codes map below;
validation errors are 422 ``invalid_request``; anything unexpected is 500
``internal_error`` with the traceback in the application log, never in the response.
``error_payload`` (status and body) and ``error_headers`` (``WWW-Authenticate`` on 401,
``Retry-After`` on limits) serve the exception handlers, the streams and, through
``send_error``, the middleware that answers before the app (auth gate, body limit).
The body's schema is the ``ErrorResponse`` model; ``document_errors`` puts it on every
operation of the OpenAPI schema.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.errors import FileRejected, IngestError
from service.errors import AuthError, ModelError, RateLimited, ServiceError, UploadsBusy

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5  # when a limit error does not say


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. model_unavailable.")
    message: str
    detail: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """Every error has this shape."""

    error: ErrorDetail


INGEST_STATUS = {
    "collection_not_found": 404,
    "embedder_mismatch": 409,
    "index_unavailable": 503,
}
MODEL_DETAIL_KEYS = frozenset({"model", "backend"})
HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_body(code: str, message: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if detail:
        body["detail"] = detail
    return {"error": body}


def error_payload(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Status and body for any exception (used by handlers and by streams)."""
    if isinstance(exc, ModelError):
        # Upstream fragments ("reason") can quote raw model output, reasoning included:
        # they stay out of responses; the code and message say what happened.
        safe = {k: v for k, v in exc.detail.items() if k in MODEL_DETAIL_KEYS}
        return exc.status, error_body(exc.code, exc.message, safe)
    if isinstance(exc, ServiceError):
        return exc.status, {"error": exc.to_dict()}
    if isinstance(exc, IngestError):
        status = 422 if isinstance(exc, FileRejected) else INGEST_STATUS.get(exc.code, 500)
        return status, error_body(exc.code, exc.message)
    return 500, error_body("internal_error", "internal error; see the service log")


def error_headers(exc: BaseException) -> dict[str, str]:
    """RFC headers: ``WWW-Authenticate`` on 401 (RFC 6750), ``Retry-After`` (seconds) on
    the rate and upload limits (429, 503 ``uploads_busy``)."""
    if isinstance(exc, AuthError) and exc.status == 401:
        return {"WWW-Authenticate": 'Bearer realm="inhouse"'}
    if isinstance(exc, RateLimited | UploadsBusy):
        return {"Retry-After": str(int(exc.detail.get("retry_after", RETRY_AFTER_S)))}
    return {}


def error_response(exc: BaseException) -> JSONResponse:
    status, body = error_payload(exc)
    return JSONResponse(body, status_code=status, headers=error_headers(exc) or None)


async def send_error(send: Any, exc: ServiceError, *, close: bool = False) -> None:
    """Answer ``exc`` at the ASGI level, before the app ran (``close``: end the connection,
    for a request whose body was not read)."""
    status, payload = error_payload(exc)
    body = json.dumps(payload).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in error_headers(exc).items()]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]  # no "input": it would echo the request (question text) back and into logs
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"] if part != "body")
    message = f"{where}: {first['msg']}" if where else str(first["msg"])
    return JSONResponse(error_body("invalid_request", message, {"errors": errors}), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI: a body that does not decode (not text, not JSON)
        return JSONResponse(error_body("invalid_request", str(exc.detail)), status_code=422)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    route = getattr(request.scope.get("route"), "path", "(no route)")  # a template, not a path
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, route, exc_info=exc)
    return error_response(exc)


def install_error_handlers(app: FastAPI) -> None:
    """The handlers, and the OpenAPI schema that documents what they answer."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(IngestError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    document_errors(app)


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


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI schema tell the truth about errors.

    Every error leaves in one shape, ``ErrorResponse``: FastAPI's default 422
    ``HTTPValidationError`` is replaced by it; operations behind the key get 401, 403
    and 429; operations with a body get 413.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema: dict[str, Any] = build()
            _rewrite_errors(schema)
        result = app.openapi_schema
        assert result is not None  # FastAPI's builder stores what it built
        return result

    app.openapi = openapi  # type: ignore[method-assign]


def _error_schemas() -> dict[str, Any]:
    """``ErrorResponse`` and the models it uses, as OpenAPI components."""
    schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), "ErrorResponse": schema}


def _rewrite_errors(schema: dict[str, Any]) -> None:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, component in _error_schemas().items():
        schemas.setdefault(name, component)
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
