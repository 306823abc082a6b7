"""Torch threads for the ingest encoder, chosen by measured speed.

Torch's threads meet at a barrier after every operation, so a thread that loses its core to
other runnable work (the parser workers, the run's own chunking and writes, other processes)
stalls the others, which spin meanwhile. On a 2-core machine under load, 600 SciFact chunks
took 111 ms of CPU and 109 ms of wall time per chunk with two threads, 48 ms and 49 ms with
one; on an idle machine two threads win. Which is faster depends on the load of the moment,
so the pipeline times its encode calls per character for both counts it may use (every core
the parsers leave, and one) and uses the faster, timing the other again every
``EXPLORE_EVERY`` calls so that a change of load is noticed.
"""

from __future__ import annotations

import threading

EXPLORE_EVERY = 8
"""Every this many calls, the thread count not in use is timed again."""
SMOOTHING = 0.5
"""Weight of the newest reading in a thread count's running speed."""


class ThreadChooser:
    """Picks the thread count for each encode call from seconds per character so far."""

    def __init__(self, *, explore_every: int = EXPLORE_EVERY) -> None:
        self._explore_every = explore_every
        self._lock = threading.Lock()
        self._speed: dict[int, float] = {}  # seconds per character, smoothed
        self._calls = 0

    def choose(self, most: int) -> int:
        """Threads for the next call: ``most`` (the cores the parsers leave) or one."""
        if most <= 1:
            return 1
        candidates = (most, 1)
        with self._lock:
            self._calls += 1
            unmeasured = [t for t in candidates if t not in self._speed]
            if unmeasured:
                return unmeasured[0]
            best = min(candidates, key=self._speed.__getitem__)
            if self._calls % self._explore_every == 0:
                return 1 if best == most else most
            return best

    def record(self, threads: int, characters: int, seconds: float) -> None:
        """A call with ``threads`` encoded ``characters`` in ``seconds`` of wall time."""
        if characters <= 0:
            return
        rate = seconds / characters
        with self._lock:
            old = self._speed.get(threads)
            self._speed[threads] = rate if old is None else old + SMOOTHING * (rate - old)

    def speed(self, threads: int) -> float | None:
        """Smoothed seconds per character with ``threads`` (None: never timed)."""
        with self._lock:
            return self._speed.get(threads)
