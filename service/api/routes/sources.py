"""``GET /v1/sources`` and ``POST /v1/sources/{name}/reindex``: scheduled re-indexing over HTTP.

The scheduler belongs to the app's resources (``service.api.deps.Resources``): at start
the app loads the sources file (``INHOUSE_SOURCES``; an invalid file stops the app with the
error) and, unless ``INHOUSE_EMBEDDED_WORKER=false``, runs the schedules inside the service,
so ``make run`` serves and re-indexes in one process. At shutdown running sources finish
their current file and end ``interrupted``; the next run resumes.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ingest.schedule import Scheduler, SourceBusy, UnknownSource
from service.api.deps import get_scheduler, require_caller
from service.api.schemas import ErrorResponse
from service.caller import SCOPE_ADMIN, SCOPE_INGEST, SCOPE_QUERY, Caller, require
from service.errors import NotFound, ReindexRunning

log = logging.getLogger(__name__)


router = APIRouter(tags=["sources"])

CallerDep = Annotated[Caller, Depends(require_caller)]
SchedulerDep = Annotated[Scheduler, Depends(get_scheduler)]


class ProgressModel(BaseModel):
    files_done: int = Field(description="Files handled so far in this run.")
    files_total: int | None = Field(description="Files this run will handle (once known).")
    eta_s: float | None = Field(description="Estimated seconds left (running runs only).")
    workers: int | None = Field(
        None,
        description="Queued runs: workers (over every host) processing its files now;"
        " null for runs executed by one process.",
    )


class FailureModel(BaseModel):
    path: str = Field(description="File path relative to its root.")
    root: str | None = Field(description="The root folder; null unless the key may re-index.")
    reason: str | None = Field(description="Stable failure code, e.g. encrypted, timeout.")
    message: str | None


class RunModel(BaseModel):
    id: str
    source: str
    collection: str
    trigger: str = Field(description="schedule, manual (CLI) or api.")
    full: bool = Field(description="Whether unchanged files were re-parsed too.")
    outcome: str = Field(
        description="running, succeeded, partial (some files failed), interrupted, error,"
        " abandoned (its process died)."
    )
    started_at: str
    finished_at: str | None
    pid: int
    host: str
    progress: ProgressModel
    counts: dict[str, int] = Field(description="Files indexed, unchanged, removed, failed.")
    error: str | None = Field(description="Why the run as a whole failed.")
    failures: list[FailureModel]


class SchedulerModel(BaseModel):
    host: str
    pid: int


class SourceModel(BaseModel):
    name: str
    collection: str
    paths: list[str] | None = Field(
        description="Server folders; null unless the key is admin or has ingest on the collection."
    )
    schedule: str
    enabled: bool
    include: list[str]
    exclude: list[str]
    next_run_at: str | None = Field(description="Next scheduled run (ISO 8601).")
    scheduler: SchedulerModel | None = Field(description="The live worker that plans it.")
    running: RunModel | None = Field(description="The run in progress, with its progress.")
    last_runs: list[RunModel] = Field(description="Most recent first.")


class RemovedRootModel(BaseModel):
    collection: str
    root: str


class RemovedSourceModel(BaseModel):
    name: str
    roots: list[RemovedRootModel] = Field(description="Still indexed until a prune.")


class SourcesResponse(BaseModel):
    sources: list[SourceModel]
    removed: list[RemovedSourceModel] = Field(
        description="Sources gone from the file whose chunks remain (admin only)."
    )


class ReindexRequest(BaseModel):
    full: bool = Field(False, description="Re-parse unchanged files too.")


class ReindexResponse(BaseModel):
    run_id: str
    source: str
    collection: str
    outcome: str = Field("running", description="Follow it in GET /v1/sources.")


@router.get(
    "/v1/sources",
    response_model=SourcesResponse,
    responses={404: {"model": ErrorResponse, "description": "No sources file is configured."}},
)
async def list_sources(
    caller: CallerDep,
    scheduler: SchedulerDep,
) -> SourcesResponse:
    """Configured sources the caller may see: progress, last runs, next run."""
    if not (caller.has_scope(SCOPE_INGEST) or caller.has_scope(SCOPE_QUERY)):
        require(caller, SCOPE_INGEST)  # raises the 403
    status = await run_in_threadpool(scheduler.status)
    removed = status.removed if caller.has_scope(SCOPE_ADMIN) else []
    return SourcesResponse(
        sources=[
            _visible(SourceModel.model_validate(s, from_attributes=True), caller)
            for s in status.sources
            if caller.can_read(s.collection)
        ],
        removed=[RemovedSourceModel.model_validate(r, from_attributes=True) for r in removed],
    )


def _visible(source: SourceModel, caller: Caller) -> SourceModel:
    """Server folder paths only for callers who may re-index the source (ingest or admin)."""
    if caller.has_scope(SCOPE_INGEST) and caller.can_read(source.collection):
        return source
    runs = [r for r in (source.running, *source.last_runs) if r is not None]
    for run in runs:
        for failure in run.failures:
            failure.root = None
    source.paths = None
    return source


@router.post(
    "/v1/sources/{name}/reindex",
    status_code=202,
    response_model=ReindexResponse,
    responses={
        404: {"model": ErrorResponse, "description": "No such source (or no sources file)."},
        409: {"model": ErrorResponse, "description": "That source is being re-indexed."},
    },
)
async def reindex_source(
    name: str,
    caller: CallerDep,
    scheduler: SchedulerDep,
    body: ReindexRequest | None = None,
) -> ReindexResponse:
    """Start re-indexing one source in the background (scope ``ingest`` on its collection)."""
    require(caller, SCOPE_INGEST)
    source = scheduler.config.get(name)
    if source is None or not caller.can_read(source.collection):
        # another collection's source is "not found" too: its name says nothing more
        raise NotFound(f"no source named {name!r}", source=name)
    full = body.full if body else False
    try:
        run_id = await run_in_threadpool(scheduler.trigger, name, full=full, trigger="api")
    except SourceBusy as exc:
        raise ReindexRunning(exc.message, source=name) from None
    except UnknownSource as exc:  # the config changed under us; not expected
        raise NotFound(exc.message, source=name) from None
    log.info("source %s: re-index %s started by %s", name, run_id, caller.id)
    return ReindexResponse(run_id=run_id, source=name, collection=source.collection)
