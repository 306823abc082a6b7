"""Run history's records: a run as stored (``RunRecord``), a source's indexed roots, whether
a run's process still lives, and the pipeline listener that writes a run's live progress
(``ingest.runs.RunStore`` holds the SQL)."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ingest.report import OUTCOMES, FileResult

if TYPE_CHECKING:
    from ingest.runs import RunStore

PROGRESS_EVERY_S = 0.5
HOST = socket.gethostname()


@dataclass(frozen=True, slots=True)
class SourceRoot:
    source: str
    collection: str
    root: str


@dataclass(slots=True)
class RunRecord:
    """One re-index run as stored."""

    id: str
    source: str
    collection: str
    trigger: str
    full: bool
    outcome: str
    started_at: str
    finished_at: str | None
    host: str
    pid: int
    files_total: int | None
    files_done: int
    eta_s: float | None
    counts: dict[str, int]
    error: str | None
    failures: list[dict[str, str | None]] = field(default_factory=list)
    workers: int | None = None  # queued runs: workers holding its files now

    @property
    def progress(self) -> dict[str, Any]:
        """Files done and total, the ETA (seconds, rounded) while running, and for a queued
        run the workers on it now (over every host)."""
        return {
            "files_done": self.files_done,
            "files_total": self.files_total,
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "workers": self.workers,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "collection": self.collection,
            "trigger": self.trigger,
            "full": self.full,
            "outcome": self.outcome,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "pid": self.pid,
            "host": self.host,
            "progress": self.progress,
            "counts": self.counts,
            "error": self.error,
            "failures": self.failures,
        }


def process_alive(host: str, pid: int) -> bool:
    """Whether ``pid`` on ``host`` still runs (a process on another host is assumed alive;
    pid 0: a queued run, which no process owns)."""
    if host != HOST or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunProgress:
    """A pipeline ``ProgressListener`` that writes files done / total and an ETA to a run row."""

    def __init__(self, store: RunStore, run_id: str, *, every_s: float = PROGRESS_EVERY_S) -> None:
        self._store = store
        self._run_id = run_id
        self._every_s = every_s
        self._started = time.monotonic()
        self._written = 0.0
        self._counts: dict[str, int] = {o: 0 for o in OUTCOMES}

    def on_start(self, total: int) -> None:
        self._started = time.monotonic()
        self._store.progress(self._run_id, done=0, total=total, eta_s=None, counts=self._counts)
        self._written = self._started

    def on_file(self, result: FileResult, done: int, total: int) -> None:
        self._counts[result.status] += 1
        now = time.monotonic()
        if now - self._written < self._every_s and done < total:
            return
        rate = done / max(now - self._started, 1e-6)
        eta = (total - done) / rate if rate > 0 else None
        self._store.progress(self._run_id, done=done, total=total, eta_s=eta, counts=self._counts)
        self._written = now
