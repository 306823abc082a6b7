"""``create_app()``: assemble the API. Nothing is built at import time.

The one lifespan: start-up loads the sources file and starts the embedded scheduler,
purges the reasoning log and schedules its daily purge; ``warm_up=True`` (``inhouse
serve``) also loads the encoder and opens the index in the background so the first
question does not pay for it. Shutdown stops the scheduler and the upload parsers, then
closes the retriever and the model client (``Resources.aclose``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from service.api.deps import Resources
from service.api.errors import install_error_handlers
from service.api.routes import (
    admin,
    auth,
    chat,
    collections,
    files,
    health,
    me,
    query,
    reasoning,
    sources,
    web,
)
from service.api.routes.metrics import install_metrics
from service.auth.app import install_access
from service.settings import ServiceSettings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: ServiceSettings | None = None, *, warm_up: bool = False) -> FastAPI:
    """The FastAPI application for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    resources = Resources(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # an invalid sources file: no start; scheduled runs count in the app's /metrics
        await run_in_threadpool(resources.start_scheduler, getattr(app.state, "metrics", None))
        purge = asyncio.create_task(resources.reasoning_log.purge_daily(), name="reasoning-purge")
        warm = asyncio.create_task(_warm_up(resources)) if warm_up else None
        try:
            yield
        finally:
            for task in (purge, warm):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            await resources.aclose()

    app = FastAPI(
        title="Inhouse",
        summary="Answers from your own documents, with citations, on your own machines.",
        version="0.1.0",
        lifespan=lifespan,
        # Swagger/ReDoc pages load scripts from a CDN: nothing may load from outside.
        # The schema itself stays at /openapi.json.
        docs_url=None,
        redoc_url=None,
        # Body limits: service.auth.hardening.BodyLimitMiddleware (JSON 413s; Starlette's
        # own limiter answers plain text). Uploads get INHOUSE_LIMITS__UPLOAD_MB.
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )
    app.state.resources = resources
    install_error_handlers(app)
    install_access(app, settings)  # keys, audit log, rate limits, hardening
    for module in (health, query, chat, collections, reasoning, me, files, web, sources):
        app.include_router(module.router)
    for module in (auth, admin):  # company sign-in, the admin page's API
        app.include_router(module.router)
    install_metrics(app, settings)  # last: its middleware is the outermost
    return app


async def _warm_up(resources: Resources) -> None:
    try:
        await run_in_threadpool(resources.retriever)
        log.info("encoder loaded and index opened")
    except Exception as exc:  # the first request will report it properly
        log.warning("warm-up failed: %s", exc)
