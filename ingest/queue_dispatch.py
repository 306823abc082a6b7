"""Starting runs through the queue: a scheduled tick or an on-demand trigger opens a run.

``QueueDispatch`` is what ``ingest.schedule.Scheduler`` calls instead of running a source in
a thread of its own when the queue is on (``INHOUSE_QUEUE__ENABLED``; default on with
PostgreSQL): it records the run in the history (outcome ``running``) and opens it in the
queue with its ``discover`` item. Any ``inhouse worker`` on any host then does the work
(``ingest.queue_worker``); the API replicas only enqueue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest.db.engine import Database
from ingest.schedule import SourceBusy, source_roots
from ingest.settings import IngestSettings
from ingest.sources import Source
from ingest.workqueue import QueueBusy, RunProgress, WorkQueue


def queue_enabled(settings: IngestSettings, db: Database) -> bool:
    """The queue setting, or its default: on when the database is PostgreSQL."""
    if settings.queue.enabled is not None:
        return settings.queue.enabled
    return db.dialect == "postgresql"


class QueueDispatch:
    """Opens queued runs; the run history is ``runs`` (``ingest.runs.RunStore``)."""

    def __init__(self, queue: WorkQueue, runs: Any) -> None:
        self.queue = queue
        self.runs = runs

    def submit(self, source: Source, *, trigger: str, full: bool = False) -> str:
        """Open a run of ``source``; ``SourceBusy`` if one is still open."""
        if self.queue.open_run_of(source.name) is not None:
            raise SourceBusy(source.name, "a queued run")
        self.runs.record_roots(source.name, source.collection, source_roots(source))
        run_id: str = self.runs.start(
            source.name, source.collection, trigger=trigger, full=full, queued=True
        )
        spec = {
            "paths": [str(p) for p in source.paths],
            "include": list(source.include),
            "exclude": list(source.exclude),
            "trigger": trigger,
        }
        try:
            self.queue.create_run(run_id, source.name, source.collection, full=full, spec=spec)
        except QueueBusy:
            self.runs.finish(run_id, "error", error="another run of this source was queued")
            raise SourceBusy(source.name, "a queued run") from None
        return run_id

    def is_open(self, name: str) -> bool:
        return self.queue.open_run_of(name) is not None

    def progress(self, run_id: str) -> RunProgress | None:
        return self.queue.progress(run_id)


ProgressLookup = Callable[[str], RunProgress | None]
