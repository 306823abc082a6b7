"""How many cores the parser processes really use, read from their CPU clocks.

The encoder shares the machine with the parser workers. Whether a worker holds a file says
little about its load: on many small text files a worker always has the next file in hand yet
uses a seventh of a core, while on a PDF it uses a whole one. Leaving a core to a worker
that barely uses it halves the encoder's speed for nothing, so the encoder's thread count
follows the workers' measured CPU share instead (user + system time of each worker and its
child processes, over the time since the last reading).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psutil

WINDOW_S = 0.5
"""Readings closer together than this reuse the last figure (a /proc read per worker)."""
BUSY_SHARE = 0.5
"""A worker using at least half a core keeps it."""


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and its live descendants; None once it is gone."""
    try:
        process = psutil.Process(pid)
        times = process.cpu_times()
        total = times.user + times.system
        for child in process.children(recursive=True):
            try:
                child_times = child.cpu_times()
            except psutil.Error:
                continue
            total += child_times.user + child_times.system
        return total
    except psutil.Error:
        return None


class ParserLoad:
    """Cores the parser workers use now, measured; ``pids()`` lists the live workers."""

    def __init__(
        self,
        pids: Callable[[], list[int]],
        cores: int,
        *,
        read_cpu: Callable[[int], float | None] = cpu_seconds,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pids = pids
        self._cores = cores
        self._read_cpu = read_cpu
        self._clock = clock
        self._lock = threading.Lock()
        self._since = clock()
        self._seen: dict[int, float] = {}
        self._busy = cores  # until the first window is measured, assume they are busy

    def busy_cores(self) -> int:
        """Whole cores the workers used since the last reading (0 to ``cores``)."""
        with self._lock:
            now = self._clock()
            elapsed = now - self._since
            if elapsed < WINDOW_S:
                return self._busy
            used = 0.0
            seen: dict[int, float] = {}
            for pid in self._pids():
                cpu = self._read_cpu(pid)
                if cpu is None:
                    continue
                seen[pid] = cpu
                if pid in self._seen:  # a worker new in this window counts from its next one
                    used += max(0.0, cpu - self._seen[pid])
            share = used / elapsed
            self._busy = min(self._cores, int(share + (1 - BUSY_SHARE)))
            self._seen, self._since = seen, now
            return self._busy


def parser_busy_cores(parser: object, cores: int) -> Callable[[], int]:
    """Busy cores of ``parser``'s workers, measured when it lists them (``worker_pids``).

    A parser that runs in this process (tests) has no workers to measure: it counts as
    using all ``cores`` while it works, as before.
    """
    if not hasattr(parser, "worker_pids"):
        return lambda: cores
    return ParserLoad(lambda: list(parser.worker_pids), cores).busy_cores
