"""Service errors: each has a stable ``code`` and an HTTP status; one handler maps them.

    ServiceError
    ├── BadRequest (422 invalid_request)       malformed or out-of-range input
    ├── NoDocuments (404 no_documents)          nothing indexed in the searched collections
    ├── NotFound (404 not_found)
    ├── PayloadTooLarge (413 payload_too_large)  a request body over its limit
    ├── AuthError (401 unauthorized)            missing, unknown or revoked key
    │   └── Forbidden (403 forbidden)           key lacks the scope or collection
    ├── RateLimited (429 rate_limited)
    │   └── TooManyUploads (429 too_many_uploads)   the key's concurrent-upload cap
    ├── UploadsBusy (503 uploads_busy)          the service-wide concurrent-upload cap
    ├── ReindexRunning (409 reindex_running)    that source is being re-indexed already
    └── ModelError (502 model_error)            the model server failed us
        ├── ModelUnavailable (503 model_unavailable)   cannot connect
        ├── ModelMissing (503 model_missing)           model not pulled
        ├── ModelTimeout (504 model_timeout)           connect / first token / total
        ├── ModelProtocolError (502 model_protocol_error)  garbage or broken stream
        └── NoAnswer (502 no_answer)                   reasoning never closed / empty answer
Services raise these; handlers never raise ``HTTPException``.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    code = "internal_error"
    status = 500

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body


class BadRequest(ServiceError):
    code = "invalid_request"
    status = 422


class NoDocuments(ServiceError):
    code = "no_documents"
    status = 404


class NotFound(ServiceError):
    code = "not_found"
    status = 404


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    status = 413


class AuthError(ServiceError):
    code = "unauthorized"
    status = 401


class Forbidden(AuthError):
    code = "forbidden"
    status = 403


class RateLimited(ServiceError):
    code = "rate_limited"
    status = 429


class TooManyUploads(RateLimited):
    code = "too_many_uploads"
    status = 429


class UploadsBusy(ServiceError):
    code = "uploads_busy"
    status = 503


class ReindexRunning(ServiceError):
    code = "reindex_running"
    status = 409


class ModelError(ServiceError):
    code = "model_error"
    status = 502


class ModelUnavailable(ModelError):
    code = "model_unavailable"
    status = 503


class ModelMissing(ModelError):
    code = "model_missing"
    status = 503


class ModelTimeout(ModelError):
    code = "model_timeout"
    status = 504


class ModelProtocolError(ModelError):
    code = "model_protocol_error"
    status = 502


class NoAnswer(ModelError):
    code = "no_answer"
    status = 502
