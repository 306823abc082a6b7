"""``GET /healthz`` (the process is up) and ``GET /readyz`` (it can answer questions).

Both need no key (orchestrator probes). ``/readyz`` without an admin key says only the
status and which checks pass; the details (model server address, model name, errors)
go to admin keys (or everyone with ``INHOUSE_AUTH=disabled``).
"""

from __future__ import annotations

import logging

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ingest.settings import ParseSettings
from service.api.deps import BackendDep, RetrieverDep, SettingsDep
from service.api.schemas import HealthResponse, ReaderStatus, ReadinessCheck, ReadinessResponse

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])  # public: no key needed (orchestrator probes)

CHECK_TIMEOUT_S = 10.0


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> HealthResponse:
    """The process is up (checks nothing else)."""
    return HealthResponse()


@router.get(
    "/readyz",
    response_model=ReadinessResponse,
    responses={503: {"model": ReadinessResponse, "description": "Some check failed."}},
)
async def readyz(
    request: Request,
    retriever: RetrieverDep,
    backend: BackendDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Index readable, model server reachable, model present: 200, else 503.

    Each check's ``detail`` only for an admin key; without one, just ``ok`` per check.
    """
    checks: dict[str, ReadinessCheck] = {}
    try:
        with anyio.fail_after(CHECK_TIMEOUT_S):
            checks["index"] = ReadinessCheck(ok=True, detail=await retriever.check())
    except Exception as exc:
        checks["index"] = ReadinessCheck(ok=False, detail=_reason(exc))
    try:
        with anyio.fail_after(CHECK_TIMEOUT_S):
            health = await backend.health()
        checks["model_server"] = ReadinessCheck(
            ok=health.reachable, detail=health.detail if not health.reachable else ""
        )
        checks["model"] = ReadinessCheck(
            ok=health.model_present,
            detail=health.model if health.model_present else health.detail or health.model,
        )
    except Exception as exc:
        checks["model_server"] = ReadinessCheck(ok=False, detail=_reason(exc))
        checks["model"] = ReadinessCheck(ok=False, detail="unknown: the model server failed")
    ready = all(check.ok for check in checks.values())
    if not ready:
        failed = ",".join(name for name, check in checks.items() if not check.ok)
        log.warning("not ready: %s", failed)
    readers = None
    if await _is_admin(request):  # reader versions are detail for operators, like the checks
        readers = await _readers(settings.parse)
    else:
        checks = {name: ReadinessCheck(ok=check.ok) for name, check in checks.items()}
    body = ReadinessResponse(
        status="ready" if ready else "not_ready", checks=checks, readers=readers
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=200 if ready else 503
    )


async def _is_admin(request: Request) -> bool:
    """Whether the request carries an admin key (always, with auth disabled); never raises."""
    from service.caller import SCOPE_ADMIN
    from service.errors import ServiceError

    access = getattr(request.app.state, "access", None)
    if access is None:
        return False
    if access.enabled and not request.headers.get("authorization"):
        return False
    client = request.client.host if request.client else None
    try:
        caller = await access.authenticate_async(request.headers.get("authorization"), client)
    except ServiceError:
        return False
    return SCOPE_ADMIN in caller.scopes


async def _readers(parse: ParseSettings) -> dict[str, ReaderStatus]:
    """Which optional readers the ingest side has (run once per process, then cached)."""
    from ingest.readers import readers_status

    try:
        with anyio.fail_after(CHECK_TIMEOUT_S):
            found = await anyio.to_thread.run_sync(
                readers_status, parse.ocr_languages, parse.ocr is not False
            )
    except Exception as exc:  # informative only: never fails readiness
        log.warning("reader detection failed: %s", _reason(exc))
        return {}
    return {
        name: ReaderStatus(
            available=bool(info["available"]),
            version=info.get("version"),
            package=str(info["package"]),
            formats=list(info["formats"]),
            languages=info.get("languages"),
        )
        for name, info in found.items()
    }


def _reason(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT_S:.0f} s"
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(message)
