"""``inhouse worker``'s consumer: claims queue items and runs each through the pipeline.

One ``QueueWorker`` per worker process; any number of processes on any number of hosts
share one queue (``ingest.workqueue``). Per item kind:

* ``discover``: list the source's files, classify them against the manifest (a settled
  row with the same size and mtime is unchanged), add an ``index`` item per file to
  (re)index and a ``remove`` item per vanished document, mark the collection "writing"
  so every replica's lexical mirror resyncs during the run.
* ``index``: the pipeline's own per-document path, unchanged: hash check, parse in an
  isolated parser process, chunk, embed (small documents batched), then manifest
  ``pending`` -> upsert -> other versions deleted -> ``indexed`` (``ingest.pipeline``'s
  numbered rules). Consecutive items of one run stream through one parse-ahead session.
  A container's members (archive members, e-mail attachments: documents of their own) are
  recorded with its item, so the run's history counts them as an in-process run does.
* ``remove``: chunks, then the manifest row.
* ``finalise`` (claimable once the run's other items are done, so exactly once): settle
  the lexical generation marker, write the run's counts and failures to its history.

An item whose collection's lock is held (``inhouse reindex --reembed``, which refuses to
start while the queue has an open run of the collection; or an in-process run) is handed
back untaken, and the collection's items wait, queued, until the lock is free.

``concurrency`` is the parser process count; embedding and writing run in this process.
A heartbeat thread renews this worker's leases; a stop (SIGTERM) hands unfinished items
back at once, so other workers take them without waiting for the lease to expire.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from ingest import bundles, observe
from ingest.batching import BatchWriter
from ingest.discover import DiscoveredFile
from ingest.errors import IngestError
from ingest.jobs import Job
from ingest.locks import collection_lock_name
from ingest.observe import IngestObserver
from ingest.parser_load import parser_busy_cores
from ingest.pipeline import IngestPipeline, ParserLike
from ingest.prefetch import Prefetcher
from ingest.queue_discover import list_run
from ingest.report import FileResult, IngestReport
from ingest.workqueue import (
    MAX_ATTEMPTS,
    ItemResult,
    QueueRun,
    WorkItem,
    WorkQueue,
    new_owner,
    run_report,
)

log = logging.getLogger(__name__)


class QueueObserver(Protocol):
    """Queue series (``service.metrics.IngestMetrics`` implements them)."""

    def queue_depth(self, depth: int) -> None: ...

    def lease_expired(self) -> None: ...


class RunHistory(Protocol):
    """What the worker needs from the run history (``ingest.runs.RunStore``)."""

    def finish(
        self,
        run_id: str,
        outcome: str,
        *,
        report: IngestReport | None = None,
        error: str | None = None,
    ) -> None: ...

    def get(self, run_id: str, *, with_failures: bool = True) -> Any: ...


class QueueWorker:
    """Claims and processes items until ``stop`` is set."""

    def __init__(
        self,
        queue: WorkQueue,
        pipeline: IngestPipeline,
        runs: RunHistory,
        *,
        concurrency: int = 1,
        stop: threading.Event | None = None,
        observer: IngestObserver | None = None,
        queue_observer: QueueObserver | None = None,
        poll_s: float = 1.0,
        heartbeat_s: float | None = None,
        check_roots: Callable[[list[Path], str], None] | None = None,
    ) -> None:
        self.queue = queue
        self.pipeline = pipeline
        self.runs = runs
        self.concurrency = concurrency
        self.stop = stop or threading.Event()
        self.observer = observer
        self.queue_observer = queue_observer
        self.poll_s = poll_s
        self.heartbeat_s = heartbeat_s or max(queue.lease_s / 3, 0.2)
        self.owner = new_owner(socket.gethostname(), os.getpid())
        self._check_roots = check_roots
        self._parser: ParserLike | None = None
        self._emit_lock = threading.Lock()
        self._held_off: set[str] = set()  # collections whose lock someone else holds

    # -- the loop --------------------------------------------------------------------------
    def run_forever(self) -> None:
        """Work until the stop event is set; then hand back what is unfinished."""
        beat = threading.Thread(target=self._heartbeat, name="queue-heartbeat", daemon=True)
        beat.start()
        log.info("queue worker %s started (concurrency %d)", self.owner, self.concurrency)
        lost = False  # the database went away mid-item: hand back what this worker held
        try:
            while not self.stop.is_set():
                try:
                    if lost:
                        self.queue.release(self.owner)
                        lost = False
                    if not self.step():
                        self.stop.wait(self.poll_s)
                except SQLAlchemyError as exc:
                    log.warning("queue database unavailable (retrying): %s", exc)
                    lost = True
                    self.stop.wait(max(self.poll_s, 1.0))
        finally:
            self.queue.release(self.owner)
            if self._parser is not None:
                self._parser.close()
            log.info("queue worker %s stopped", self.owner)

    def step(self) -> bool:
        """Claim and process one item (an index item streams its run's next ones too)."""
        if self.queue_observer is not None:
            self.queue_observer.queue_depth(self.queue.depth())
        self._held_off = {name for name in self._held_off if self._locked(name)}
        item = self.queue.claim(self.owner, skip_collections=self._held_off)
        if item is None:
            return False
        self._note_claim(item)
        if self._hold_off(item):
            return True
        with observe.observing(self.observer):
            try:
                if item.kind == "discover":
                    self._discover(item)
                elif item.kind == "finalise":
                    self._finalise(item)
                else:
                    self._index_session(item)
            except SQLAlchemyError:
                raise  # the database, not the run: retried by the loop
            except Exception as exc:  # noqa: BLE001 - one bad run must not stop the worker
                self._run_failed(item, exc)
        return True

    def _locked(self, collection: str) -> bool:
        return self.queue.db.lock_busy(collection_lock_name(collection))

    def _hold_off(self, item: WorkItem) -> bool:
        """Hand ``item`` back if its collection's lock is held (a re-embed building and
        switching generations, or an in-process run): the run waits, queued, until it is
        free. Checked after the claim: a re-embed that takes the lock later finds the run
        open and refuses, so no item of a re-embedding collection is ever worked on."""
        run = self.queue.run(item.run_id)
        if run is None or not self._locked(run.collection):
            return False
        self.queue.hand_back(item, self.owner)
        if run.collection not in self._held_off:
            log.info("holding off collection %s: its lock is held (a re-embed?)", run.collection)
        self._held_off.add(run.collection)
        return True

    def _heartbeat(self) -> None:
        while not self.stop.wait(self.heartbeat_s):
            try:
                self.queue.heartbeat(self.owner)
            except Exception as exc:  # noqa: BLE001 - the database may be restarting
                log.warning("queue heartbeat failed (retrying): %s", exc)

    def _note_claim(self, item: WorkItem) -> None:
        if item.reclaimed:
            log.info(
                "item %d (%s %s) reclaimed after an expired lease",
                item.id,
                item.kind,
                item.path or item.run_id,
            )
            if self.queue_observer is not None:
                self.queue_observer.lease_expired()

    def _run_failed(self, item: WorkItem, exc: Exception) -> None:
        message = f"{exc.code}: {exc.message}" if isinstance(exc, IngestError) else str(exc)
        message = message or type(exc).__name__
        log.error("run %s failed at %s item %d: %s", item.run_id, item.kind, item.id, message)
        if item.kind in ("discover", "finalise"):
            record = self.runs.get(item.run_id, with_failures=False)
            if record is not None and record.outcome == "running":
                self.runs.finish(item.run_id, "error", error=message)
            self.queue.abort_run(item.run_id)
        else:  # the items of the session are handed back; another attempt may succeed
            self.queue.release(self.owner)

    # -- discover --------------------------------------------------------------------------
    def _discover(self, item: WorkItem) -> None:
        run = self.queue.run(item.run_id)
        if run is None:
            return
        pipeline, collection = self.pipeline, run.collection
        if self._check_roots is not None:
            self._check_roots([Path(p) for p in run.spec["paths"]], collection)
        new, unchanged = list_run(pipeline, run)
        if any(n.status is None for n in new):
            pipeline.index.refresh(collection)
            pipeline.index.collection(collection, create=True)  # embedder mismatch fails here
            pipeline.index.begin_writing(collection)  # replicas' mirrors resync during the run
        if self.queue.add_discovered(item, self.owner, new, unchanged=unchanged):
            log.info("run %s: %d items to process, %d unchanged", run.id, len(new), unchanged)

    # -- index and remove -------------------------------------------------------------------
    def _index_session(self, first: WorkItem) -> None:
        """Process ``first`` and the run's next claimable file items through one parse-ahead
        stream, until none is left to claim (or the worker stops)."""
        run = self.queue.run(first.run_id)
        if run is None:
            return
        collection, full, pipeline = run.collection, run.full, self.pipeline
        pipeline.index.refresh(collection)
        pipeline.index.collection(collection, create=True)
        held: dict[str, WorkItem] = {}
        members: dict[int, list[ItemResult]] = {}  # a container's, recorded with its item
        observer = observe.current()

        def emit(result: FileResult) -> None:
            with self._emit_lock:
                item = held.pop(result.document_id, None)
                if item is None and (parent := _container_of(held.values(), result)):
                    members.setdefault(parent.id, []).append(ItemResult.of(result))
                done_with = members.pop(item.id, []) if item is not None else []
                if observer is not None:
                    observer.file_done(result)
            if item is not None and not self.queue.complete(
                item,
                self.owner,
                status=result.status,
                reason=result.reason,
                message=result.message,
                chunks=result.chunks,
                members=done_with,
            ):
                log.info("item %d was taken over by another worker", item.id)

        def claimed() -> Iterator[WorkItem]:
            item: WorkItem | None = first
            while item is not None and not self.stop.is_set():
                yield item
                item = self.queue.claim(self.owner, run_id=run.id, kinds=("index", "remove"))
                if item is not None:
                    self._note_claim(item)

        def jobs() -> Iterator[Job]:
            for item in claimed():
                with self._emit_lock:
                    held[item.doc_id or ""] = item
                if item.kind == "remove":
                    emit(self._remove(collection, item))
                    continue
                if item.attempts > MAX_ATTEMPTS:
                    emit(self._given_up(item))
                    continue
                file = self._file(item)
                if file is None:
                    emit(self._vanished(collection, item))
                    continue
                settled = emit if item.attempts == 1 else self._redone(run, emit)
                unchanged = bundles.emit_unchanged(pipeline.manifest, collection, settled)
                yield from pipeline.classify([file], collection, full, unchanged, self.stop)

        parser = self._parser_pool()
        pending = ((job, job.file.path) for job in jobs())

        def parse_ahead(halt: threading.Event) -> Iterator[tuple[Job, Any]]:
            return parser.parse_many(pending, stop=lambda: halt.is_set() or self.stop.is_set())

        try:
            ahead = Prefetcher(parse_ahead, depth=max(2, self.concurrency), name="parse-ahead")

            parser_cores = parser_busy_cores(parser, self.concurrency)

            def busy_cores() -> int:
                return parser_cores() if ahead.producing else 0

            writer = BatchWriter(pipeline, collection, full=full, busy_cores=busy_cores)
            with closing(ahead):
                for job, parsed in ahead:
                    for result in writer.add(job, parsed, more_waiting=ahead.ready):
                        emit(result)
                    if self.stop.is_set():
                        break
                stopped = self.stop.is_set()
                for result in writer.abandon() if stopped else writer.flush():
                    emit(result)
        finally:
            with self._emit_lock:
                left = [item.id for item in held.values()]
                held.clear()
                members.clear()
            if left:
                self.queue.release(self.owner, left)

    def _redone(
        self, run: QueueRun, emit: Callable[[FileResult], None]
    ) -> Callable[[FileResult], None]:
        """``emit`` for an item claimed again: a file a lost worker indexed in this run (its
        manifest row settled after the run opened) counts as indexed, not unchanged, so the
        run's counts equal a run no worker was lost in."""
        opened = datetime.fromtimestamp(run.created_at, UTC)

        def emit_redone(result: FileResult) -> None:
            if result.status == "unchanged":
                record = self.pipeline.manifest.get(result.document_id)
                written = record.indexed_at if record is not None else None
                if written is not None and datetime.fromisoformat(written) >= opened:
                    result.status = "indexed"
            emit(result)

        return emit_redone

    def _parser_pool(self) -> ParserLike:
        if self._parser is None:
            factory = self.pipeline.parser_factory
            self._parser = factory(self.pipeline.settings.parse, self.concurrency)
        return self._parser

    @staticmethod
    def _file(item: WorkItem) -> DiscoveredFile | None:
        root = Path(item.root or "")
        try:
            stat = os.stat(root / (item.path or ""))
        except OSError:
            return None
        return DiscoveredFile(
            root=root, relative=item.path or "", size=stat.st_size, mtime_ns=stat.st_mtime_ns
        )

    def _remove(self, collection: str, item: WorkItem) -> FileResult:
        record = self.pipeline.manifest.get(item.doc_id or "")
        if record is not None:
            return self.pipeline.writer.remove(record)
        self.pipeline.index.delete_document(collection, item.doc_id or "")  # a redo
        return FileResult(
            path=item.path or "",
            root=item.root or "",
            document_id=item.doc_id or "",
            status="removed",
        )

    @staticmethod
    def _given_up(item: WorkItem) -> FileResult:
        log.error("item %d (%s): given up after %d claims", item.id, item.path, item.attempts)
        return FileResult(
            path=item.path or "",
            root=item.root or "",
            document_id=item.doc_id or "",
            status="failed",
            reason="worker_lost",
            message=f"every worker that took this file stopped before finishing it"
            f" ({item.attempts - 1} times); the next run tries it again",
        )

    def _vanished(self, collection: str, item: WorkItem) -> FileResult:
        """A file listed by discovery that is gone when its item runs: removed if indexed."""
        if self.pipeline.manifest.get(item.doc_id or "") is not None:
            return self._remove(collection, item)
        return FileResult(
            path=item.path or "",
            root=item.root or "",
            document_id=item.doc_id or "",
            status="failed",
            reason="vanished",
            message="the file was gone before it was read",
        )

    # -- finalise ---------------------------------------------------------------------------
    def _finalise(self, item: WorkItem) -> None:
        run = self.queue.run(item.run_id)
        if run is None:
            return
        self.pipeline.writer.settle(run.collection)
        record = self.runs.get(run.id, with_failures=False)
        if record is not None and record.outcome == "running":
            report = run_report(self.queue, run.id, run.collection, run.unchanged)
            outcome = "partial" if report.failed else "succeeded"
            self.runs.finish(run.id, outcome, report=report)
            log.info("run %s of %s %s %s", run.id, run.source, outcome, report.counts())
        self.queue.close_run(item, self.owner)


def _container_of(items: Iterable[WorkItem], result: FileResult) -> WorkItem | None:
    """The item of the container that ``result`` (a member's) belongs to, if held."""
    for item in items:
        if item.root == result.root and item.path and result.path.startswith(f"{item.path}/"):
            return item
    return None
