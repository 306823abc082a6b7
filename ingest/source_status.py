"""Sources as typed records: config, the running run's progress, the last runs, the next run.

``inhouse sources`` prints ``SourcesStatus.to_dict()`` (its ``--json`` shape) and
``GET /v1/sources`` builds its response models from the same records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ingest.runs import RunRecord, RunStore, SourceRoot
from ingest.sources import SourcesConfig

if TYPE_CHECKING:
    from ingest.workqueue import RunProgress

ProgressLookup = Callable[[str], "RunProgress | None"]


@dataclass(frozen=True, slots=True)
class SchedulerInfo:
    """The live worker that plans a source's next run."""

    host: str
    pid: int


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    collection: str
    paths: list[str]
    schedule: str
    enabled: bool
    include: list[str]
    exclude: list[str]
    next_run_at: str | None
    scheduler: SchedulerInfo | None
    running: RunRecord | None
    last_runs: list[RunRecord]

    def to_dict(self) -> dict[str, Any]:
        scheduler = self.scheduler
        return {
            "name": self.name,
            "collection": self.collection,
            "paths": self.paths,
            "schedule": self.schedule,
            "enabled": self.enabled,
            "include": self.include,
            "exclude": self.exclude,
            "next_run_at": self.next_run_at,
            "scheduler": scheduler and {"host": scheduler.host, "pid": scheduler.pid},
            "running": self.running.to_dict() if self.running else None,
            "last_runs": [run.to_dict() for run in self.last_runs],
        }


@dataclass(frozen=True, slots=True)
class RemovedSource:
    """A source with history but no longer configured: its chunks stay until a prune."""

    name: str
    roots: list[SourceRoot]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roots": [{"collection": r.collection, "root": r.root} for r in self.roots],
        }


@dataclass(frozen=True, slots=True)
class SourcesStatus:
    sources: list[SourceStatus]
    removed: list[RemovedSource]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": [source.to_dict() for source in self.sources],
            "removed": [source.to_dict() for source in self.removed],
        }


def with_queue_progress(record: RunRecord | None, progress: ProgressLookup | None) -> None:
    """A queued run's progress as the queue sees it: every worker on every host counted."""
    if record is None or progress is None:
        return
    seen = progress(record.id)
    if seen is None:
        return
    record.files_done, record.files_total, record.eta_s = seen.done, seen.total, seen.eta_s
    record.counts = dict(seen.counts)
    record.workers = seen.workers


def sources_status(
    config: SourcesConfig,
    store: RunStore,
    *,
    now: datetime,
    history: int = 5,
    progress: ProgressLookup | None = None,
) -> SourcesStatus:
    """Per source: its config, the running run's progress, the last runs and the next run;
    and the removed sources whose chunks remain (until ``inhouse reindex --prune``).
    ``progress``: a queued run's progress across workers (``ingest.workqueue``)."""
    store.mark_abandoned()
    out = []
    for source in config.sources:
        scheduled = store.scheduled(source.name)
        running = store.running(source.name)
        with_queue_progress(running, progress)
        if scheduled:
            next_run_at = scheduled["next_run_at"]
        elif source.enabled:
            next_run_at = source.next_run(now).isoformat()
        else:
            next_run_at = None
        out.append(
            SourceStatus(
                name=source.name,
                collection=source.collection,
                paths=[str(p) for p in source.paths],
                schedule=source.schedule,
                enabled=source.enabled,
                include=list(source.include),
                exclude=list(source.exclude),
                next_run_at=next_run_at,
                scheduler=SchedulerInfo(scheduled["host"], scheduled["pid"]) if scheduled else None,
                running=running,
                last_runs=store.recent(source.name, history),
            )
        )
    roots = store.roots()
    removed = [
        RemovedSource(name, [r for r in roots if r.source == name])
        for name in store.history_sources()
        if config.get(name) is None
    ]
    return SourcesStatus(out, removed)
