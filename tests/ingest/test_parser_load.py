"""The encoder's share of the cores follows what the parser workers really use."""

from __future__ import annotations

import os
import subprocess
import sys

from ingest.parser_load import WINDOW_S, ParserLoad, cpu_seconds, parser_busy_cores


class Clocks:
    """A wall clock and per-process CPU clocks that the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0
        self.cpu: dict[int, float] = {}

    def read(self, pid: int) -> float | None:
        return self.cpu.get(pid)

    def advance(self, seconds: float, **used: float) -> None:
        """Move the wall clock; each ``pN=s`` adds ``s`` CPU seconds to process N."""
        self.now += seconds
        for name, cpu in used.items():
            pid = int(name[1:])
            self.cpu[pid] = self.cpu.get(pid, 0.0) + cpu


def load_of(clocks: Clocks, pids: list[int], cores: int) -> ParserLoad:
    return ParserLoad(lambda: pids, cores, read_cpu=clocks.read, clock=lambda: clocks.now)


def test_a_worker_that_barely_works_leaves_its_core_to_the_encoder() -> None:
    clocks = Clocks()
    clocks.cpu[7] = 5.0
    load = load_of(clocks, [7], cores=1)
    assert load.busy_cores() == 1  # nothing measured yet: assume busy, as before
    clocks.advance(1.0, p7=0.9)
    assert load.busy_cores() == 0  # first window only learns the clock of the new worker
    clocks.advance(1.0, p7=0.15)  # small text files: a seventh of a core
    assert load.busy_cores() == 0
    clocks.advance(1.0, p7=0.95)  # a PDF: the whole core
    assert load.busy_cores() == 1


def test_two_workers_add_up_and_the_count_is_capped() -> None:
    clocks = Clocks()
    clocks.cpu.update({1: 0.0, 2: 0.0})
    load = load_of(clocks, [1, 2], cores=2)
    clocks.advance(1.0)
    load.busy_cores()
    clocks.advance(1.0, p1=0.4, p2=0.4)  # 0.8 of a core between them
    assert load.busy_cores() == 1
    clocks.advance(1.0, p1=1.0, p2=1.0)
    assert load.busy_cores() == 2
    clocks.advance(1.0, p1=3.0, p2=3.0)  # children counted in: more than a core each
    assert load.busy_cores() == 2


def test_readings_within_the_window_reuse_the_last_figure() -> None:
    clocks = Clocks()
    clocks.cpu[3] = 0.0
    load = load_of(clocks, [3], cores=1)
    clocks.advance(1.0)
    load.busy_cores()
    clocks.advance(1.0, p3=1.0)
    assert load.busy_cores() == 1
    clocks.advance(WINDOW_S / 2, p3=0.0)  # idle, but too soon to tell
    assert load.busy_cores() == 1


def test_a_replaced_worker_is_not_counted_for_time_before_it_was_seen() -> None:
    clocks = Clocks()
    pids = [1]
    clocks.cpu[1] = 0.0
    load = load_of(clocks, pids, cores=1)
    clocks.advance(1.0)
    load.busy_cores()
    pids[:] = [2]  # recycled: a new worker whose clock already reads 4 s (its start-up)
    clocks.cpu[2] = 4.0
    clocks.advance(1.0, p2=0.1)
    assert load.busy_cores() == 0
    clocks.advance(1.0, p2=0.1)
    assert load.busy_cores() == 0


def test_cpu_seconds_of_real_processes() -> None:
    own = cpu_seconds(os.getpid())
    assert own is not None and own > 0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert cpu_seconds(child.pid) is None  # gone


def test_parsers_without_workers_count_as_busy_while_they_work() -> None:
    class InProcess:
        pass

    class Pooled:
        worker_pids = [os.getpid()]

    assert parser_busy_cores(InProcess(), 2)() == 2
    assert parser_busy_cores(Pooled(), 2)() == 2  # unmeasured at first
