"""Start several processes at the same instant and collect what each one raised."""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any


def _call(target: Callable[[Path], Any], path: Path, barrier: Barrier, errors: Queue[str]) -> None:
    barrier.wait()
    try:
        target(path)
        errors.put("")
    except Exception:
        errors.put(traceback.format_exc())


def race(
    target: Callable[[Path], Any], fresh_path: Callable[[int], Path], *, processes: int, rounds: int
) -> list[str]:
    """Run ``target(fresh_path(round))`` in ``processes`` forked processes at once, per round.

    Returns the tracebacks raised, one per failed call (empty when every call succeeded).
    """
    ctx = mp.get_context("fork")
    failures: list[str] = []
    for n in range(rounds):
        path = fresh_path(n)
        barrier = ctx.Barrier(processes)
        errors: Queue[str] = ctx.Queue()
        procs = [
            ctx.Process(target=_call, args=(target, path, barrier, errors))
            for _ in range(processes)
        ]
        for proc in procs:
            proc.start()
        failures += [e for e in (errors.get(timeout=60) for _ in procs) if e]
        for proc in procs:
            proc.join(timeout=60)
    return failures
