"""Prometheus metrics: the ``inhouse_*`` series, one registry per app or worker process.

Each ``create_app()`` (and each ``inhouse worker --metrics-port``) owns a
``CollectorRegistry`` of its own, never prometheus_client's global one, so several apps in
one process (tests) count apart. Series (counters end in ``_total`` when exposed):

=========================================== ===================================================
``inhouse_http_requests_total``             method, route (the template, never the raw
                                            path; ``unmatched`` for 404s), status
``inhouse_http_request_duration_seconds``   histogram; method, route, status (to the last
                                            body byte: a streamed answer counts whole)
``inhouse_retrieval_duration_seconds``      histogram: encode + search + fuse + rerank
``inhouse_model_first_token_seconds``       histogram; model: request sent -> first delta
``inhouse_model_tokens_per_second``         histogram; model: completion tokens over the
                                            time from the first delta to the end
``inhouse_model_tokens_total``              model, kind (prompt, completion)
``inhouse_answers_total``                   mode (model, extract, sources, none), code
                                            (ok, or the error or notice code: e.g.
                                            model_unavailable, grounding_failed, cancelled)
``inhouse_ingest_files_total``              status (indexed, unchanged, removed, failed),
                                            reason (the failure code; ``none`` otherwise)
``inhouse_ingest_chunks_written_total``     chunks of indexed files
``inhouse_lexical_refreshes_total``         kind (full: built from scratch, a new or lost
                                            mirror; incremental; unchanged): lexical
                                            mirror syncs with Chroma
``inhouse_lexical_chunks_total``            change (added, removed) by those syncs
``inhouse_queue_depth``                     gauge: queue items not done yet, over every open
                                            run (as a worker last saw it)
``inhouse_lease_expiries_total``            queue items reclaimed after their holder's lease
                                            expired (a worker killed or cut off)
``inhouse_schedule_lag_seconds``           histogram: how late a scheduled run fired after
                                            its cron slot (the scheduler that won the slot)
``inhouse_rate_limit_fallbacks_total``      limit (key, auth-failure): rate-limit checks
                                            answered in process because the shared
                                            database was unavailable
                                            (``service.auth.ratelimit_db``)
=========================================== ===================================================

The ingest series (``IngestMetrics``) are the same in the service (uploads, the embedded
scheduler) and in ``inhouse worker``; Prometheus tells them apart by ``job``/``instance``.
The queue series (``ingest.queue_worker.QueueObserver``) are ``IngestMetrics`` members too, so
the worker exports them on the same port.

Service code records through ``current()``, set per request by ``MetricsMiddleware`` (the
audit log's pattern: retrieval and answering need not know about HTTP); ingest code
through ``ingest.observe``, which the middleware sets too.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import BaseModel, Field

from ingest import observe

if TYPE_CHECKING:
    from ingest.lexical import SyncResult
    from ingest.report import FileResult
    from service.answer_types import QueryResult
    from service.llm.base import ModelDone

Scope = MutableMapping[str, Any]

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
RETRIEVAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
FIRST_TOKEN_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
TOKENS_PER_S_BUCKETS = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 250, 500)


class MetricsSettings(BaseModel):
    """``/metrics`` and the worker's metrics port (env ``INHOUSE_METRICS__*``)."""

    public: bool = Field(
        False,
        description="Serve /metrics without a key (scrapers that cannot send one); otherwise"
        " it needs a key with the metrics scope (admin keys have it).",
    )
    worker_host: str = Field(
        "127.0.0.1",
        description="Address `inhouse worker --metrics-port` listens on (default: loopback).",
    )


class IngestMetrics:
    """Ingest series: per-file outcomes, chunks written, lexical refreshes.

    An ``ingest.observe.IngestObserver``: uploads, scheduled runs and the worker report here.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.files = Counter(
            "inhouse_ingest_files",
            "Files processed by ingest runs, by outcome and failure reason.",
            ["status", "reason"],
            registry=registry,
        )
        self.chunks = Counter(
            "inhouse_ingest_chunks_written",
            "Chunks written to the index for indexed files.",
            registry=registry,
        )
        self.lexical = Counter(
            "inhouse_lexical_refreshes",
            "Lexical (BM25) mirror syncs with Chroma: full, incremental or unchanged.",
            ["kind"],
            registry=registry,
        )
        self.lexical_chunks = Counter(
            "inhouse_lexical_chunks",
            "Chunks added to or removed from lexical mirrors by syncs.",
            ["change"],
            registry=registry,
        )
        self.depth = Gauge(
            "inhouse_queue_depth",
            "Ingest queue items not done yet, over every open run.",
            registry=registry,
        )
        self.schedule_lag_seconds = Histogram(
            "inhouse_schedule_lag_seconds",
            "Seconds between a schedule's cron slot and the moment its run was started.",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
            registry=registry,
        )
        self.lease_expiries = Counter(
            "inhouse_lease_expiries",
            "Queue items reclaimed after their holder's lease expired.",
            registry=registry,
        )
        for kind in ("full", "incremental", "unchanged"):
            self.lexical.labels(kind=kind)
        for change in ("added", "removed"):
            self.lexical_chunks.labels(change=change)

    def file_done(self, result: FileResult) -> None:
        reason = (result.reason or "parse_error") if result.status == "failed" else "none"
        self.files.labels(status=result.status, reason=reason).inc()
        if result.status == "indexed" and result.chunks:
            self.chunks.inc(result.chunks)

    def queue_depth(self, depth: int) -> None:
        self.depth.set(depth)

    def lease_expired(self) -> None:
        self.lease_expiries.inc()

    def schedule_lag(self, seconds: float) -> None:
        self.schedule_lag_seconds.observe(max(seconds, 0.0))

    def lexical_synced(self, result: SyncResult) -> None:
        if result.rebuilt:
            kind = "full"
        elif result.added or result.removed:
            kind = "incremental"
        else:
            kind = "unchanged"
        self.lexical.labels(kind=kind).inc()
        if result.added:
            self.lexical_chunks.labels(change="added").inc(result.added)
        if result.removed:
            self.lexical_chunks.labels(change="removed").inc(result.removed)


class ServiceMetrics(IngestMetrics):
    """Everything the API process exports: HTTP, retrieval, model, answers, ingest."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry or CollectorRegistry(auto_describe=True))
        registry = self.registry
        self.requests = Counter(
            "inhouse_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "inhouse_http_request_duration_seconds",
            "HTTP request latency to the last body byte, by method, route template and status.",
            ["method", "route", "status"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.retrieval_seconds = Histogram(
            "inhouse_retrieval_duration_seconds",
            "Retrieval latency: question encoding, search, fusion and reranking.",
            buckets=RETRIEVAL_BUCKETS,
            registry=registry,
        )
        self.first_token_seconds = Histogram(
            "inhouse_model_first_token_seconds",
            "Model time to first token (request sent -> first reasoning or answer delta).",
            ["model"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self.tokens_per_second = Histogram(
            "inhouse_model_tokens_per_second",
            "Completion tokens per second, from the first delta to the end of the answer.",
            ["model"],
            buckets=TOKENS_PER_S_BUCKETS,
            registry=registry,
        )
        self.model_tokens = Counter(
            "inhouse_model_tokens",
            "Tokens the model server reported, by kind (prompt, completion).",
            ["model", "kind"],
            registry=registry,
        )
        self.answers = Counter(
            "inhouse_answers",
            "Answers by mode (model, extract, sources, none) and code (ok or why not).",
            ["mode", "code"],
            registry=registry,
        )
        self.rate_limit_fallbacks = Counter(
            "inhouse_rate_limit_fallbacks",
            "Rate-limit checks answered in this process because the shared database was"
            " unavailable, by limit (key, auth-failure).",
            ["limit"],
            registry=registry,
        )
        for mode in ("model", "extract"):
            self.answers.labels(mode=mode, code="ok")
        for limit in ("key", "auth-failure"):
            self.rate_limit_fallbacks.labels(limit=limit)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = {"method": method, "route": route, "status": str(status)}
        self.requests.labels(**labels).inc()
        self.request_seconds.labels(**labels).observe(seconds)

    def rate_limit_fallback(self, limit: str) -> None:
        self.rate_limit_fallbacks.labels(limit=limit).inc()

    def observe_retrieval(self, seconds: float) -> None:
        self.retrieval_seconds.observe(seconds)

    def observe_answer(
        self,
        *,
        mode: str,
        code: str,
        model: str,
        first_token_s: float | None = None,
        tokens_per_s: float | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        """One answered (or failed) question; model figures only when a model was asked."""
        self.answers.labels(mode=mode, code=code).inc()
        if first_token_s is not None:
            self.first_token_seconds.labels(model=model).observe(first_token_s)
        if tokens_per_s is not None:
            self.tokens_per_second.labels(model=model).observe(tokens_per_s)
        if prompt_tokens:
            self.model_tokens.labels(model=model, kind="prompt").inc(prompt_tokens)
        if completion_tokens:
            self.model_tokens.labels(model=model, kind="completion").inc(completion_tokens)


def note_answer(
    status: str,
    result: QueryResult | None,
    *,
    model: str,
    model_started: float,
    first_delta: float | None,
    done: ModelDone | None,
) -> None:
    """Count one question's outcome in the current app's metrics (``service.answer``).

    ``status``: ok, extract (asked for), cancelled or an error code; ``result``: what the
    caller got (None: an error). Times are ``perf_counter`` readings.
    """
    recorder = current()
    if recorder is None:
        return
    if result is None:
        mode, code = "none", status
    else:
        notice = (result.notice or {}).get("code")
        mode, code = result.mode, notice if notice and notice != "extract" else "ok"
    tokens_per_s = None
    if status == "ok" and done is not None and first_delta is not None and done.completion_tokens:
        elapsed = perf_counter() - first_delta
        tokens_per_s = done.completion_tokens / elapsed if elapsed > 0 else None
    recorder.observe_answer(
        mode=mode,
        code=code,
        model=model,
        first_token_s=None if first_delta is None else first_delta - model_started,
        tokens_per_s=tokens_per_s,
        prompt_tokens=done.prompt_tokens if done else 0,
        completion_tokens=done.completion_tokens if done else 0,
    )


_CURRENT: contextvars.ContextVar[ServiceMetrics | None] = contextvars.ContextVar(
    "inhouse_metrics", default=None
)


def current() -> ServiceMetrics | None:
    """The metrics of the app serving this request (None outside a request)."""
    return _CURRENT.get()


@contextmanager
def recording(metrics: ServiceMetrics) -> Iterator[None]:
    """Make ``metrics`` current (``current()``, ``ingest.observe``) inside the block."""
    token = _CURRENT.set(metrics)
    try:
        with observe.observing(metrics):
            yield
    finally:
        _CURRENT.reset(token)


class MetricsMiddleware:
    """Pure ASGI middleware: count and time each HTTP request by route template and status.

    Outermost, so 401s from the key gate, 413s and 429s count too. It also makes the app's
    metrics current for the request (``current()``, ``ingest.observe``).
    """

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            with recording(self.metrics):
                await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = str(scope.get("method", ""))
            method = method if method in METHODS else "other"  # bounded label values
            self.metrics.observe_request(method, route, status, perf_counter() - started)


def worker_metrics_host() -> str:
    """``INHOUSE_METRICS__WORKER_HOST`` (the worker reads no other service setting)."""
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class _Env(BaseSettings):
        model_config = SettingsConfigDict(
            env_prefix="INHOUSE_", env_nested_delimiter="__", extra="ignore"
        )
        metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    return _Env().metrics.worker_host


def serve_worker_metrics(host: str, port: int) -> tuple[IngestMetrics, Any]:
    """A worker's ingest series on ``host:port`` (a daemon thread); returns them and the
    HTTP server (``shutdown()`` it at exit). ``OSError`` when the port cannot be bound."""
    from prometheus_client import start_http_server

    metrics = IngestMetrics(CollectorRegistry(auto_describe=True))
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return metrics, server
