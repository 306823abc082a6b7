"""One place that turns exceptions into HTTP errors: ``{"error": {"code", "message"}}``.

``ServiceError`` carries its own status; ingest's ``IngestError`` codes map below;
validation errors are 422 ``invalid_request``; anything unexpected is 500
``internal_error`` with the traceback in the application log, never in the response.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.errors import FileRejected, IngestError
from service.errors import ModelError, ServiceError

log = logging.getLogger(__name__)

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


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    status, body = error_payload(exc)
    return JSONResponse(body, status_code=status)


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
    status, body = error_payload(exc)
    return JSONResponse(body, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(IngestError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
