"""``GET /metrics``: the app's ``inhouse_*`` series in Prometheus text format.

Readable with a key holding the ``metrics`` scope (admin keys hold every scope), or by
anyone when ``INHOUSE_METRICS__PUBLIC=true`` (scrapers that cannot send a key; then keep
the port off the public network). ``install_metrics(app, settings)`` adds the route and
the counting middleware (``service.metrics``); ``create_app`` calls it once, last, so the
middleware is the outermost and also counts the requests the key gate refuses.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import require_scope
from service.caller import SCOPE_METRICS
from service.metrics import MetricsMiddleware, ServiceMetrics
from service.settings import ServiceSettings


def install_metrics(app: FastAPI, settings: ServiceSettings) -> ServiceMetrics:
    """A registry for ``app``, the counting middleware, and ``GET /metrics``."""
    metrics = ServiceMetrics()
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    async def scrape() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    dependencies: list[Any] = []
    if not settings.metrics.public:
        dependencies.append(Depends(require_scope(SCOPE_METRICS)))
    app.add_api_route(
        "/metrics",
        scrape,
        methods=["GET"],
        dependencies=dependencies,
        tags=["monitoring"],
        summary="Prometheus metrics (scope metrics, or public when configured)",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text format."}},
    )
    return metrics
