"""Parse files in worker processes, so no single file can hang, crash or exhaust the run.

Workers come from multiprocessing's ``forkserver`` (a small process: ``ingest`` only); each
worker keeps torch out (``ingest.parser_env``), imports unstructured's text partitioner and
warms it up once (other partitioners on their first file), then serves many files. A
monitor thread watches busy workers even while the caller is not iterating: past
``timeout_s`` or above ``memory_mb`` (resident set of the worker and its children, e.g.
pandoc) the worker is killed with its children and replaced, and the file gets a
``ParseTimeout`` or ``TooLarge``. The clock and the cap apply only while a worker parses, so a
caller slow to read big results never causes a timeout. A worker that dies mid-file yields a
``ParseError``. Each worker has its own TMPDIR, removed with it (the worker process and
the parent's handle on it: ``ingest.parser_worker``).

Like any forkserver/spawn user, a script that creates a pool must guard its entry point with
``if __name__ == "__main__":`` (workers re-import the main module).
"""

from __future__ import annotations

import itertools
import multiprocessing
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import wait
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from ingest.documents import ParsedDocument
from ingest.errors import (
    FileRejected,
    ParseError,
    ParseTimeout,
    TooLarge,
    rejection_from_code,
)
from ingest.parser_worker import Job, Worker, describe_exit
from ingest.settings import ParseSettings

K = TypeVar("K")

MIB = 1024 * 1024
MONITOR_INTERVAL_S = 0.05
"""How often busy workers' clocks are checked."""
MEMORY_INTERVAL_S = 0.25
"""How often busy workers' memory is measured (a /proc scan: dearer than a clock check)."""
START_TIMEOUT_S = 180.0
"""A worker not ready (imports + warm-up) after this long is killed and counted as failed."""
MAX_START_FAILURES = 3
"""Consecutive workers dying before ready, after which parse_many raises instead of retrying."""
RECYCLE_GROWTH_MB = 384
"""A worker whose resident memory grew by more than this since it was ready is retired after
its file, bounding leaks in parser libraries (formats first met import their partitioners:
up to ~250 MB)."""
RECYCLE_AFTER_FILES = 5000
"""A worker is retired after this many files however little it grew (leaks that are not
memory: handles, caches). Retiring every few hundred files cost a worker start (~3 s of
CPU, and a wait for the next parsed file) every few hundred small files."""


class ParserPool:
    """Parses files in isolated, reusable worker processes; see the module docstring."""

    def __init__(
        self,
        settings: ParseSettings,
        workers: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._clock = clock  # times starts and parses (tests inject one they advance)
        self._size = workers or settings.workers
        self._context = multiprocessing.get_context("forkserver")
        # Effective only if this process has not started its fork server yet. The parsers
        # themselves are imported by each worker, not preloaded: a forked worker touches
        # (copies) most of what it inherits anyway, so preloading them cost ~110 MB more
        # in all, to save ~2.5 s when a worker is replaced.
        self._context.set_forkserver_preload(
            ["ingest.parser_env", "ingest", "ingest.parser_worker"]
        )
        self._tmp_root = Path(tempfile.mkdtemp(prefix="inhouse-parse-"))
        self._lock = threading.Lock()
        self._workers: list[Worker] = []
        self._job_ids = itertools.count()
        self._start_failures = 0
        self._last_start_error = ""
        self._closed = False
        self._iterating = False
        self._stop = threading.Event()
        self._ensure_workers()
        self._monitor = threading.Thread(target=self._watch, name="parser-monitor", daemon=True)
        self._monitor.start()

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._lock:
            return [worker.pid for worker in self._workers]

    @property
    def busy_paths(self) -> dict[int, Path]:
        """File each busy worker is parsing, by worker pid (for progress displays)."""
        with self._lock:
            return {w.pid: w.job.path for w in self._workers if w.job is not None}

    def parse_many(
        self, items: Iterable[tuple[K, Path]], *, stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[K, ParsedDocument | FileRejected]]:
        """Parse ``(key, path)`` items; yield ``(key, document or rejection)`` as each finishes.

        ``items`` is consumed lazily, at most ``2 * workers`` files ahead. Stopping early
        (closing the iterator, or ``stop()`` turning true, checked twice a second) kills the
        workers still busy (they are replaced on the next call).
        """
        if self._closed:
            raise RuntimeError("the parser pool is closed")
        if self._iterating:
            raise RuntimeError("parse_many is already running on this pool")
        self._iterating = True
        source = iter(items)
        queue: deque[tuple[K, Path]] = deque()
        exhausted = False
        try:
            while True:
                while not exhausted and len(queue) + self._busy_count() < 2 * self._size:
                    try:
                        queue.append(next(source))
                    except StopIteration:
                        exhausted = True
                self._ensure_workers()
                self._dispatch(queue)
                if exhausted and not queue and not self._busy_count():
                    return
                yield from self._collect()
                if stop is not None and stop():
                    return
        finally:
            self._iterating = False
            with self._lock:
                abandoned = [w for w in self._workers if w.job is not None]
            for worker in abandoned:
                worker.kill()
                self._remove(worker)

    def close(self) -> None:
        """Stop every worker (and its children); the pool cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._monitor.join(timeout=5)
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            if worker.job is None and worker.process.is_alive():
                try:
                    worker.conn.send(None)  # idle: ask it to exit cleanly
                except OSError:
                    pass
                worker.process.join(timeout=1)
            worker.kill()
            worker.reap()
        shutil.rmtree(self._tmp_root, ignore_errors=True)

    def __enter__(self) -> ParserPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- main-thread machinery ----------------------------------------------------------

    def _busy_count(self) -> int:
        return sum(1 for worker in self._workers if worker.job is not None)

    def _ensure_workers(self) -> None:
        if self._start_failures >= MAX_START_FAILURES:
            raise RuntimeError(f"parser workers fail to start: {self._last_start_error}")
        while len(self._workers) < self._size:
            worker = Worker(self._context, self._settings, self._tmp_root)
            worker.spawned = self._clock()
            with self._lock:
                self._workers.append(worker)

    def _dispatch(self, queue: deque[tuple[Any, Path]]) -> None:
        for worker in list(self._workers):
            if not queue:
                return
            if not worker.ready or worker.job is not None:
                continue
            key, path = queue.popleft()
            job = Job(next(self._job_ids), key, Path(path), self._clock())
            try:
                worker.conn.send((job.id, str(job.path)))
            except OSError:  # died while idle: requeue; its sentinel reports the death
                queue.appendleft((key, path))
                continue
            with self._lock:
                worker.job = job

    def _collect(self) -> Iterator[tuple[Any, ParsedDocument | FileRejected]]:
        """Wait briefly for replies or exits; yield the results that arrived."""
        by_handle: dict[Any, Worker] = {}
        for worker in self._workers:
            by_handle[worker.conn] = worker
            by_handle[worker.process.sentinel] = worker
        for handle in wait(list(by_handle), timeout=0.5):
            worker = by_handle[handle]
            if worker not in self._workers:
                continue  # already handled through its other handle
            if handle is worker.conn:
                result = self._receive(worker)
            else:
                result = self._on_exit(worker)
            if result is not None:
                yield result

    def _receive(self, worker: Worker) -> tuple[Any, ParsedDocument | FileRejected] | None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            return self._on_exit(worker)
        return self._handle(worker, message)

    def _handle(self, worker: Worker, message: Any) -> tuple[Any, Any] | None:
        tag = message[0]
        if tag == "ready":
            worker.ready = True
            worker.ready_rss = worker.own_rss()
            self._start_failures = 0
            return None
        if tag == "fatal":
            self._last_start_error = str(message[1])
            return None  # the worker exits next; its death is counted in _on_exit
        job_id, document, code, text = message
        with self._lock:
            job = worker.job
            if job is None or job.id != job_id:
                return None  # a stale reply for a job already given up on
            worker.job = None
        worker.files_done += 1
        grown = worker.own_rss() - worker.ready_rss
        if worker.files_done >= RECYCLE_AFTER_FILES or grown > RECYCLE_GROWTH_MB * MIB:
            worker.kill()
            self._remove(worker)
        if document is None:
            return job.key, rejection_from_code(code, text)
        return job.key, document

    def _on_exit(self, worker: Worker) -> tuple[Any, FileRejected] | None:
        """A worker died: salvage a reply already sent, else blame the file it was on."""
        result = None
        try:
            while worker.job is not None and worker.conn.poll():
                result = self._handle(worker, worker.conn.recv()) or result
        except (EOFError, OSError):
            pass
        with self._lock:
            job, worker.job = worker.job, None
        self._remove(worker)  # out of the monitor's sight before its pid can be reused
        if not worker.ready:
            self._start_failures += 1
            self._last_start_error = self._last_start_error or describe_exit(worker)
        if job is None:
            return result
        rejection = worker.doom or ParseError(
            f"the parser process crashed on this file ({describe_exit(worker)})"
        )
        return job.key, rejection

    def _remove(self, worker: Worker) -> None:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
        worker.reap()

    # --- monitor thread -----------------------------------------------------------------

    def _watch(self) -> None:
        cap = self._settings.memory_mb * MIB
        next_memory_check = 0.0
        while not self._stop.wait(MONITOR_INTERVAL_S):
            now = self._clock()
            check_memory = now >= next_memory_check
            if check_memory:
                next_memory_check = now + MEMORY_INTERVAL_S
            with self._lock:
                for worker in self._workers:
                    if worker.doom is not None:
                        continue
                    job = worker.job
                    if job is None:
                        if not worker.ready and now - worker.spawned > START_TIMEOUT_S:
                            self._last_start_error = "a worker did not start in time"
                            worker.doom = ParseError(self._last_start_error)
                            worker.kill()
                        continue
                    if worker.parsing.value != job.id:
                        continue  # not started yet, or done and handing the result over
                    if now - job.started > self._settings.timeout_s:
                        worker.doom = ParseTimeout(
                            f"parsing took longer than {self._settings.timeout_s:g} s"
                        )
                        worker.kill()
                    elif check_memory and (rss := worker.rss()) > cap:
                        worker.doom = TooLarge(
                            f"the parser exceeded the memory cap ({rss / MIB:,.0f} MiB >"
                            f" {self._settings.memory_mb:,} MiB)"
                        )
                        worker.kill()
