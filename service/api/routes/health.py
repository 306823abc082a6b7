"""``GET /healthz`` (the process is up) and ``GET /readyz`` (it can answer questions)."""

from __future__ import annotations

import logging

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import BackendDep, RetrieverDep
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
    retriever: RetrieverDep,
    backend: BackendDep,
) -> JSONResponse:
    """Index readable, model server reachable, model present: 200, else 503 with details."""
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
    body = ReadinessResponse(
        status="ready" if ready else "not_ready", checks=checks, readers=await _readers()
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)


async def _readers() -> dict[str, ReaderStatus]:
    """Which optional readers the ingest side has (run once per process, then cached)."""
    from ingest.readers import readers_status
    from ingest.settings import get_ingest_settings

    try:
        parse = get_ingest_settings().parse
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
