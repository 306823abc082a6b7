"""The re-index worker: runs each configured source on its cron schedule, one run at a time.

One run per source across processes and hosts: a run holds the database lock
``source-<name>`` (``Database.lock``: an advisory lock on PostgreSQL, a ``flock`` file in
the data dir on SQLite; a dead holder's lock is free). A scheduled run that finds it held
is skipped with a logged reason; an on-demand run waits for it or fails with
:class:`SourceBusy`. Each scheduled slot fires once, whichever hosts run a scheduler: the
scheduler that records the ``(source, slot)`` row first (``RunStore.claim_tick``) fires it,
the others log that it was taken and skip it.
Stopping (SIGTERM) sets the pipeline's stop event: the current file is finished, progress
is recorded, the run ends ``interrupted`` and the next run resumes where it stopped.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ingest import observe
from ingest.db import Database
from ingest.discover import scan_root
from ingest.embed import Embedder
from ingest.errors import IngestError
from ingest.locks import Lock, LockBusy
from ingest.manifest import Manifest
from ingest.observe import IngestObserver
from ingest.pipeline import IngestPipeline, ProgressListener
from ingest.report import FileResult
from ingest.runs import RunProgress, RunRecord, RunStore
from ingest.settings import IngestSettings
from ingest.source_status import SourcesStatus, sources_status
from ingest.sources import Source, SourcesConfig, SourcesError

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class Dispatch(Protocol):
    """Where runs go when the work queue is on (``ingest.queue_dispatch.QueueDispatch``)."""

    def submit(self, source: Source, *, trigger: str, full: bool = False) -> str: ...

    def is_open(self, name: str) -> bool: ...


PipelineFactory = Callable[[], IngestPipeline]
LOCK_POLL_S = 0.2
MAX_SLEEP_S = 1.0  # the loop re-reads the clock at least this often (clock jumps, stop)


class SourceBusy(IngestError):
    """A run of this source is already in progress (in this or another process)."""

    code = "reindex_running"

    def __init__(self, source: str, holder: str) -> None:
        super().__init__(f"source {source!r} is being re-indexed ({holder or 'another process'})")
        self.source = source
        self.holder = holder


class UnknownSource(IngestError):
    code = "unknown_source"


def local_now() -> datetime:
    """The real clock: now, aware, in the machine's time zone (cron reads local time)."""
    return datetime.now().astimezone()


def source_roots(source: Source) -> list[str]:
    """The roots the pipeline records for a source's paths (as ``scan_root`` resolves them)."""
    return sorted({str(scan_root(p)) if p.exists() else str(p.resolve()) for p in source.paths})


def check_roots(paths: list[Path], collection: str, manifest: Manifest) -> None:
    """Refuse an empty root that has indexed documents: likely an unmounted share."""
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        if path.is_dir() and next(os.scandir(path), None) is None:
            held = manifest.count(collection, root=str(scan_root(path)))
            if held:
                raise SourcesError(
                    f"{path} is empty but {held} documents were indexed from it (is the"
                    " share mounted?); nothing was removed. To drop them, remove the"
                    " source and run `inhouse reindex --prune`."
                )


@dataclass(slots=True)
class Claim:
    """A source whose lock is held and whose run row exists; hand it to ``execute``."""

    source: Source
    run_id: str
    lock: Lock
    trigger: str
    full: bool


class _Tee:
    def __init__(self, *listeners: ProgressListener) -> None:
        self._listeners = listeners

    def on_start(self, total: int) -> None:
        for listener in self._listeners:
            listener.on_start(total)

    def on_file(self, result: FileResult, done: int, total: int) -> None:
        for listener in self._listeners:
            listener.on_file(result, done, total)


class SourceRunner:
    """Claims and executes source runs against one data dir; records them in the manifest DB."""

    def __init__(
        self,
        settings: IngestSettings,
        *,
        pipeline_factory: PipelineFactory | None = None,
        stop: threading.Event | None = None,
        observer: IngestObserver | None = None,
        embedder: Embedder | None = None,
        database: Database | None = None,
    ) -> None:
        """``embedder``: an encoder to share with the rest of the process (the service's);
        default: one of the runner's own, shared by all its runs. ``database``: the shared
        state to use (the service's); default: opened from ``settings``."""
        self.settings = settings
        self.observer = observer  # metrics: made current around each run (ingest.observe)
        settings.ensure_data_dir()
        self.stop_event = stop or threading.Event()
        self.runs = RunStore(Manifest(database) if database else Manifest.open(settings))
        self._factory = pipeline_factory or self._default_pipeline
        self._embedder = embedder
        self._embedder_lock = threading.Lock()

    def _default_pipeline(self) -> IngestPipeline:
        with self._embedder_lock:  # one encoder shared by every run of this process
            if self._embedder is None:
                self._embedder = Embedder(self.settings.embed)
        manifest = Manifest(self.runs.manifest.db)  # the runner's pool (close() keeps it)
        return IngestPipeline(self.settings, embedder=self._embedder, manifest=manifest)

    def source_lock(self, name: str) -> Lock:
        """The lock a run of source ``name`` holds (every process and host sharing the DB)."""
        return self.runs.db.lock(f"source-{name}")

    def claim(
        self, source: Source, *, trigger: str, full: bool = False, wait: float | None = 0
    ) -> Claim:
        """Take the source's lock and open a run row.

        ``wait``: seconds to wait for a live holder (0: fail at once, None: until it is
        free or the stop event is set); raises :class:`SourceBusy` when not taken.
        """
        lock = self.source_lock(source.name)
        waited = 0.0
        while True:
            try:
                lock.acquire(timeout=0)
                break
            except LockBusy as exc:
                if self.stop_event.is_set() or (wait is not None and waited >= wait):
                    raise SourceBusy(source.name, exc.holder) from None
                if waited == 0:
                    log.info("source %s: waiting for the run held by %s", source.name, exc.holder)
                self.stop_event.wait(LOCK_POLL_S)
                waited += LOCK_POLL_S
        try:
            self.runs.mark_abandoned(source.name, lock_held=True)
            self.runs.record_roots(source.name, source.collection, source_roots(source))
            run_id = self.runs.start(source.name, source.collection, trigger=trigger, full=full)
        except BaseException:
            lock.release()
            raise
        return Claim(source=source, run_id=run_id, lock=lock, trigger=trigger, full=full)

    def execute(self, claim: Claim, listener: ProgressListener | None = None) -> RunRecord:
        """Run the claimed source to its end (or to the stop event), record it, release it."""
        source, run_id = claim.source, claim.run_id
        pipeline: IngestPipeline | None = None
        log.info("source %s: run %s started (%s)", source.name, run_id, claim.trigger)
        try:
            self._check_roots(source)
            pipeline = self._factory()
            progress = RunProgress(self.runs, run_id)
            with observe.observing(self.observer):
                report = pipeline.run(
                    list(source.paths),
                    source.collection,
                    full=claim.full,
                    include=source.include,
                    exclude=source.exclude,
                    stop=self.stop_event,
                    listener=_Tee(progress, listener) if listener else progress,
                )
            outcome = (
                "interrupted" if report.interrupted else "partial" if report.failed else "succeeded"
            )
            self.runs.finish(run_id, outcome, report=report)
            log.info("source %s: run %s %s %s", source.name, run_id, outcome, report.counts())
        except Exception as exc:  # the run failed as a whole: record why, keep the worker alive
            message = f"{exc.code}: {exc.message}" if isinstance(exc, IngestError) else str(exc)
            message = message or type(exc).__name__
            log.error("source %s: run %s failed: %s", source.name, run_id, message)
            self.runs.finish(run_id, "error", error=message)
        finally:
            if pipeline is not None:
                pipeline.close()
            claim.lock.release()
        record = self.runs.get(run_id)
        assert record is not None
        return record

    def run(
        self,
        source: Source,
        *,
        trigger: str = "manual",
        full: bool = False,
        wait: float | None = None,
        listener: ProgressListener | None = None,
    ) -> RunRecord:
        """Claim (waiting as asked) and execute in this thread."""
        return self.execute(self.claim(source, trigger=trigger, full=full, wait=wait), listener)

    def _check_roots(self, source: Source) -> None:
        check_roots(list(source.paths), source.collection, self.runs.manifest)

    def prune(self, config: SourcesConfig) -> list[dict[str, Any]]:
        """Drop chunks and manifest rows of roots that belong to no configured source."""
        wanted = {(s.name, s.collection, r) for s in config.sources for r in source_roots(s)}
        covered = {(collection, root) for _, collection, root in wanted}
        pruned: list[dict[str, Any]] = []
        pipeline: IngestPipeline | None = None
        try:
            for item in self.runs.roots():
                if (item.source, item.collection, item.root) in wanted:
                    continue
                removed = 0
                if (item.collection, item.root) not in covered:
                    pipeline = pipeline or self._factory()
                    removed = pipeline.remove_collection_documents(item.collection, item.root)
                self.runs.forget_root(item)
                pruned.append(
                    {
                        "source": item.source,
                        "collection": item.collection,
                        "root": item.root,
                        "documents_removed": removed,
                    }
                )
                log.info("pruned %s: %s in %s (%d documents)", *pruned[-1].values())
        finally:
            if pipeline is not None:
                pipeline.close()
        for name in self.runs.history_sources():
            if config.get(name) is None:
                self.runs.forget_source(name)
        return pruned


class Scheduler:
    """Fires each enabled source on its cron schedule; each run in its own thread."""

    def __init__(
        self,
        config: SourcesConfig,
        runner: SourceRunner,
        *,
        clock: Clock = local_now,
        dispatch: Dispatch | None = None,
    ) -> None:
        """``dispatch``: runs are queued there for the workers instead of run in a thread."""
        self.config = config
        self.runner = runner
        self.clock = clock
        self.dispatch = dispatch
        self._next: dict[str, datetime] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._loop: threading.Thread | None = None

    @property
    def stop_event(self) -> threading.Event:
        return self.runner.stop_event

    def next_runs(self) -> dict[str, datetime]:
        return dict(self._next)

    def _plan(self, source: Source, now: datetime) -> None:
        self._next[source.name] = source.next_run(now)
        self.runner.runs.set_next_run(source.name, self._next[source.name].isoformat())

    def tick(self, now: datetime | None = None) -> list[str]:
        """Start every due source (missed slots coalesce into one run); returns their names."""
        now = now or self.clock()
        started = []
        for source in self.config.sources:
            if not source.enabled:
                continue
            if source.name not in self._next:
                self._plan(source, now)
            slot = self._next[source.name]
            if slot > now:
                continue
            self._plan(source, now)
            taken = self.runner.runs.claim_tick(source.name, slot.astimezone(UTC).isoformat())
            if taken is not None:
                log.info(
                    "source %s: scheduled run of %s skipped: fired by %s",
                    source.name,
                    slot.isoformat(),
                    taken,
                )
                continue
            lag = getattr(self.runner.observer, "schedule_lag", None)
            if lag is not None:
                lag((now - slot).total_seconds())
            try:
                self.trigger(source.name, trigger="schedule")
            except SourceBusy as exc:
                log.info("source %s: scheduled run skipped: %s", source.name, exc.message)
                continue
            started.append(source.name)
        return started

    def trigger(
        self, name: str, *, full: bool = False, trigger: str = "api", wait: float | None = 0
    ) -> str:
        """Start a run of ``name`` in a background thread; returns its run id."""
        source = self.config.get(name)
        if source is None:
            raise UnknownSource(f"no source named {name!r} in the sources file")
        if self.dispatch is not None:
            return self.dispatch.submit(source, trigger=trigger, full=full)
        with self._lock:
            running = self._threads.get(name)
            if running is not None and running.is_alive():
                raise SourceBusy(name, f"pid={os.getpid()}")
            claim = self.runner.claim(source, trigger=trigger, full=full, wait=wait)
            thread = threading.Thread(
                target=self.runner.execute, args=(claim,), name=f"reindex-{name}", daemon=True
            )
            self._threads[name] = thread
            thread.start()
        return claim.run_id

    def status(self, history: int = 5) -> SourcesStatus:
        """``sources_status`` for this scheduler's sources."""
        progress = getattr(self.dispatch, "progress", None)
        return sources_status(
            self.config, self.runner.runs, now=self.clock(), history=history, progress=progress
        )

    def is_running(self, name: str) -> bool:
        if self.dispatch is not None:
            return self.dispatch.is_open(name)
        thread = self._threads.get(name)
        return thread is not None and thread.is_alive()

    def run_forever(self) -> None:
        """Tick until the stop event is set, then wait for running sources to finish."""
        names = [s.name for s in self.config.sources if s.enabled]
        log.info("scheduler started: %d sources (%s)", len(names), ", ".join(names) or "none")
        while not self.stop_event.is_set():
            now = self.clock()
            self.tick(now)
            soonest = min(self._next.values(), default=None)
            wait = MAX_SLEEP_S if soonest is None else (soonest - now).total_seconds()
            self.stop_event.wait(min(max(wait, 0.01), MAX_SLEEP_S))
        self.join()
        self.runner.runs.clear_next_runs(names)
        log.info("scheduler stopped")

    def start(self) -> None:
        """Run the loop in a background thread (the service embeds the worker this way)."""
        self._loop = threading.Thread(target=self.run_forever, name="scheduler", daemon=True)
        self._loop.start()

    def join(self, timeout: float | None = None) -> None:
        for thread in list(self._threads.values()):
            thread.join(timeout)

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop: running sources finish their current file, record progress and end."""
        self.stop_event.set()
        if self._loop is not None:
            self._loop.join(timeout)
        self.join(timeout)
