"""Dependencies: settings, the one auth dependency, and the service's collaborators.

Every long-lived collaborator (the encoder, retriever, model backend, reasoning log,
originals finder, upload service, sources scheduler) lives in one ``Resources`` object per
app, built on first use (or warmed at start-up by ``inhouse serve``), started and closed by
the one lifespan in ``service.api.main``. Routes build nothing: handlers receive these
through ``Depends``; tests replace any of them with ``app.dependency_overrides``.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ingest.observe import IngestObserver
from ingest.schedule import Scheduler
from service.answer import QueryService
from service.auth.access import AccessControl
from service.caller import SCOPE_QUERY, SCOPE_REASONING, Caller
from service.errors import AuthError, Forbidden, NotFound
from service.llm.base import ChatBackend
from service.llm.factory import generation_options
from service.originals import Originals
from service.reasoning_log import ReasoningLog
from service.retrieval import Retriever
from service.settings import ServiceSettings
from service.uploads import UploadService

if TYPE_CHECKING:
    from ingest.db import Database
    from ingest.embed import Embedder
    from ingest.settings import IngestSettings
    from service.rerank import Reranker


QUERY_TORCH_THREADS = 1  # unless INHOUSE_EMBED__THREADS says otherwise
MIB = 1024 * 1024


class Resources:
    """The app's long-lived collaborators, each built once on first use: the one encoder,
    the retriever, the model backend, the reasoning log, the originals finder, the upload
    service and the sources scheduler. ``start`` and ``aclose`` are the app's lifespan."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._encoder_lock = threading.Lock()
        self._encoder: Embedder | None = None
        self._retriever: Retriever | None = None
        self._backend: ChatBackend | None = None
        self._originals: Originals | None = None
        self._uploads: UploadService | None = None
        self.scheduler: Scheduler | None = None
        self._db_lock = threading.Lock()
        self._db: Database | None = None
        self.reasoning_log = ReasoningLog(
            settings.reasoning_dir, settings.reasoning_log.retention_days
        )

    def database(self) -> Database:
        """The shared-state database (one connection pool for the app's stores)."""
        with self._db_lock:
            if self._db is None:
                from ingest.db import open_database

                self._db = open_database(self.settings)
            return self._db

    def encoder(self) -> Embedder:
        """The process's one encoder: questions, uploads and scheduled runs share its model
        (built here, loaded on first use; before, each loaded its own copy)."""
        with self._encoder_lock:
            if self._encoder is None:
                from ingest.embed import Embedder

                embed = self.settings.embed
                if embed.threads is None:
                    # One question is a tiny forward pass: several intra-op threads only
                    # add synchronisation, and under concurrent requests or a busy CPU they
                    # oversubscribe the cores (measured: 25 ms vs 500+ ms per question on
                    # a loaded 2-core host). Concurrency comes from requests, not torch.
                    # torch's thread count is process-wide: uploads and scheduled runs in
                    # the service encode with it too, as they did with separate copies.
                    embed = embed.model_copy(update={"threads": QUERY_TORCH_THREADS})
                self._encoder = Embedder(embed)
            return self._encoder

    def retriever(self) -> Retriever:
        """Encoder + Chroma + manifest (blocking: loads the encoder the first time)."""
        with self._lock:
            if self._retriever is None:
                from ingest.errors import IndexUnavailable, IngestError
                from ingest.index import make_chroma_client
                from ingest.manifest import Manifest

                settings = self.settings
                try:
                    embedder = self.encoder()
                    embedder.encode(["warm-up"])  # load now: the index sees the final encoder
                    self._retriever = Retriever(
                        make_chroma_client(settings),
                        embedder,
                        Manifest(self.database()),
                        settings=settings.retrieval,
                        lexical_dir=settings.data_dir / "lexical",
                        reranker=_reranker(settings),
                    )
                except IngestError:
                    raise
                except Exception as exc:  # encoder files, manifest: the index is unusable
                    raise IndexUnavailable(f"cannot open the index: {exc}") from exc
            return self._retriever

    @property
    def built_retriever(self) -> Retriever | None:
        """The retriever if it is already built (no waiting, no loading)."""
        return self._retriever

    def backend(self) -> ChatBackend:
        with self._lock:
            if self._backend is None:
                from service.llm.factory import build_backend

                self._backend = build_backend(self.settings)
            return self._backend

    def originals(self) -> Originals:
        """Finds an indexed document's original file (blocking: opens the manifest)."""
        with self._lock:
            if self._originals is None:
                from ingest.manifest import Manifest

                self.settings.ensure_data_dir()
                self._originals = Originals(Manifest(self.database()), self.settings.parse)
            return self._originals

    def uploads(self) -> UploadService:
        with self._lock:
            if self._uploads is None:
                self._uploads = UploadService(
                    self.settings,
                    max_bytes=int(self.settings.limits.upload_mb * MIB),
                    embedder=self.encoder(),
                )
            return self._uploads

    def start_scheduler(self, observer: IngestObserver | None = None) -> None:
        """Load the sources file (``INHOUSE_SOURCES``; an invalid one raises and stops the
        app) and, unless ``INHOUSE_EMBEDDED_WORKER=false``, run its schedules in-process.
        ``observer``: counts the scheduled runs (the app's ``/metrics``)."""
        if self.settings.sources is None:
            return
        from ingest.queue_dispatch import QueueDispatch, queue_enabled
        from ingest.schedule import SourceRunner
        from ingest.sources import load_sources
        from ingest.workqueue import WorkQueue

        runner = SourceRunner(
            self.settings, embedder=self.encoder(), observer=observer, database=self.database()
        )
        dispatch = None
        if queue_enabled(self.settings, self.database()):
            # runs are queued for the workers (any replica may trigger, none executes)
            dispatch = QueueDispatch(
                WorkQueue(self.database(), lease_s=self.settings.queue.lease_s), runner.runs
            )
        config = load_sources(self.settings.sources)
        self.scheduler = Scheduler(config, runner, dispatch=dispatch)
        if self.settings.embedded_worker:
            self.scheduler.start()

    def close_ingest(self) -> None:
        """Blocking part of shutdown: running sources finish their current file and end
        ``interrupted``; the upload parser pool stops."""
        if self.scheduler is not None:
            self.scheduler.shutdown()
            self.scheduler = None
        with self._lock:
            if self._uploads is not None:
                self._uploads.close()
                self._uploads = None

    async def aclose(self) -> None:
        await run_in_threadpool(self.close_ingest)
        if self._retriever is not None:
            self._retriever.close()
        if self._backend is not None:
            await self._backend.aclose()
            self._backend = None
        with self._db_lock:
            if self._db is not None:
                self._db.dispose()
                self._db = None


def _reranker(settings: IngestSettings) -> Reranker | None:
    """The cross-encoder when ``INHOUSE_RERANK__MODEL_PATH`` is set (loaded on first use)."""
    if settings.rerank.model_path is None:
        return None
    from service.rerank import Reranker

    return Reranker(settings.rerank.model_path, candidates=settings.rerank.candidates)


# Providers that do no I/O are ``async def``: FastAPI runs plain ``def`` dependencies in
# the thread pool, a hop per dependency per request that shows in time-to-first-token.


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


async def get_settings(request: Request) -> ServiceSettings:
    """The app's settings (``create_app(settings)``, else read once from the environment)."""
    resources: Resources = request.app.state.resources
    return resources.settings


# Documents the scheme in OpenAPI (securitySchemes + per-operation security); the header
# itself is checked by the access gate, which tells a missing key from a malformed one.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An Inhouse API key (`inhouse keys create`): `Authorization: Bearer ih_...`.",
)


session_scheme = APIKeyCookie(
    name="inhouse_session",
    auto_error=False,
    scheme_name="Session",
    description="A signed-in browser session (INHOUSE_AUTH=oidc, GET /auth/login). Requests"
    " that change state also need the session's X-CSRF-Token (from GET /v1/me).",
)


async def require_caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    _session: Annotated[str | None, Depends(session_scheme)],
) -> Caller:
    """The one auth dependency: every route but /healthz and /readyz passes it.

    ``Authorization: Bearer <key>`` -> the key's ``Caller`` (401 ``unauthorized`` when
    missing, unknown or revoked; 429 ``rate_limited`` over the key's limit). With
    ``INHOUSE_AUTH=disabled`` everyone is an admin. An app without the gate refuses all.
    """
    from service.auth.gate import cached_caller

    gated = cached_caller(request.scope)  # bodies: authenticated before they were read
    if gated is not None:
        return gated
    access: AccessControl | None = getattr(request.app.state, "access", None)
    if access is None:
        raise AuthError("access control is not configured for this app")
    signin = getattr(request.app.state, "signin", None)
    if signin is not None:  # company sign-in: a session cookie, when no key is sent
        from service.auth.signin import request_caller

        caller = await request_caller(signin, request)
        if caller is not None:
            await access.admit(caller)
            return caller
    client = request.client.host if request.client else None
    return await access.authenticate_async(request.headers.get("authorization"), client)


async def require_key_caller(caller: Annotated[Caller, Depends(require_caller)]) -> Caller:
    """Routes only keys make sense for (key management): a browser session is refused, so
    a stolen or forged session can never mint long-lived credentials."""
    if caller.kind == "session":
        raise Forbidden(
            "this route takes an API key (Authorization: Bearer), not a browser session",
            reason="key_only",
        )
    return caller


def require_scope(scope: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the caller (from ``require_caller``), who must hold ``scope``."""

    async def check(caller: Annotated[Caller, Depends(require_caller)]) -> Caller:
        if not caller.has_scope(scope):
            raise Forbidden(f"this key lacks the {scope!r} scope", scope=scope)
        return caller

    check.__name__ = f"require_scope_{scope.replace(':', '_')}"
    return check


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_retriever(resources: ResourcesDep) -> Retriever:
    ready = resources.built_retriever
    return ready if ready is not None else await run_in_threadpool(resources.retriever)


async def get_backend(resources: ResourcesDep) -> ChatBackend:
    return resources.backend()


async def get_reasoning_log(resources: ResourcesDep) -> ReasoningLog:
    return resources.reasoning_log


async def get_originals(resources: ResourcesDep) -> Originals:
    return await run_in_threadpool(resources.originals)


def get_uploads(resources: ResourcesDep) -> UploadService:
    return resources.uploads()


async def get_scheduler(resources: ResourcesDep) -> Scheduler:
    """The app's scheduler; 404 when no sources file is configured."""
    if resources.scheduler is None:
        raise NotFound("no sources file is configured (set INHOUSE_SOURCES)")
    return resources.scheduler


RetrieverDep = Annotated[Retriever, Depends(get_retriever)]
BackendDep = Annotated[ChatBackend, Depends(get_backend)]
ReasoningLogDep = Annotated[ReasoningLog, Depends(get_reasoning_log)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]


async def get_query_service(
    retriever: RetrieverDep,
    backend: BackendDep,
    reasoning_log: ReasoningLogDep,
    settings: SettingsDep,
) -> QueryService:
    return QueryService(
        retriever, backend, reasoning_log, settings, options=generation_options(settings)
    )


QueryServiceDep = Annotated[QueryService, Depends(get_query_service)]
QueryCaller = Annotated[Caller, Depends(require_scope(SCOPE_QUERY))]
ReasoningCaller = Annotated[Caller, Depends(require_scope(SCOPE_REASONING))]
