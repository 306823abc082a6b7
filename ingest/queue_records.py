"""The queue's records: what a claim returns, what discovery adds, a run's progress
(``ingest.workqueue`` holds the SQL)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ingest.errors import IngestError
from ingest.locks import LockBusy
from ingest.report import FileResult


class QueueBusy(IngestError):
    """The source already has an open run in the queue."""

    code = "reindex_running"


class QueuedRunOpen(LockBusy):
    """A re-embed of a collection that an open queued run writes: refused, like a re-embed
    that finds the collection's lock busy (``inhouse reindex --reembed`` exits 1)."""

    def __init__(self, collection: str, runs: list[QueueRun]) -> None:
        named = ", ".join(f"run {run.id[:8]} of source {run.source!r}" for run in runs)
        super().__init__(
            f"collection {collection!r}",
            f"the work queue ({named}); re-embed once the queue has finished"
            " (`inhouse sources` shows its progress)",
        )


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A claimed item; ``reclaimed``: its previous holder's lease had expired."""

    id: int
    run_id: str
    kind: str
    doc_id: str | None
    root: str | None
    path: str | None
    attempts: int
    reclaimed: bool


@dataclass(frozen=True, slots=True)
class QueueRun:
    id: str
    source: str
    collection: str
    full: bool
    spec: dict[str, Any]
    state: str
    unchanged: int
    created_at: float
    first_claim_at: float | None


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item discovery adds: ``index`` or ``remove`` one document; or an already-settled
    result (``status`` set: a refused path) recorded as done."""

    kind: str
    doc_id: str
    root: str
    path: str
    status: str | None = None
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class RunProgress:
    """Progress of an open run across every worker: files done / total, ETA, counts."""

    done: int
    total: int | None  # None until discovery has listed the files
    eta_s: float | None
    counts: dict[str, int] = field(default_factory=dict)
    workers: int = 0  # distinct holders of items right now


@dataclass(frozen=True, slots=True)
class ItemResult:
    status: str
    reason: str | None
    message: str | None
    root: str | None
    path: str | None
    chunks: int

    @classmethod
    def of(cls, result: FileResult) -> ItemResult:
        return cls(
            result.status, result.reason, result.message, result.root, result.path, result.chunks
        )


def new_owner(host: str, pid: int) -> str:
    """A worker's owner tag: host, pid and a random part (a restarted pid is a new owner)."""
    return f"{host}:{pid}:{uuid.uuid4().hex[:8]}"
