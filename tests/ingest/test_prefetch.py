"""Prefetcher: order kept, bounded lookahead, errors re-raised, early stop cleans up."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import closing

import pytest

from ingest.prefetch import Prefetcher


def counting(produced: list[int], n: int) -> Iterator[int]:
    for i in range(n):
        produced.append(i)
        yield i


def wait_until(condition: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_items_arrive_in_order_and_the_producer_runs_ahead_by_depth() -> None:
    produced: list[int] = []
    with closing(Prefetcher(lambda _halt: counting(produced, 10), depth=2, name="t")) as ahead:
        items = iter(ahead)
        assert next(items) == 0
        # the consumer holds item 0: the producer fills the queue (1, 2) and holds 3
        assert wait_until(lambda: len(produced) == 4)
        time.sleep(0.2)
        assert len(produced) == 4
        assert wait_until(lambda: not ahead.producing)  # waiting for room, not working
        assert list(items) == list(range(1, 10))
    assert not ahead.producing


def test_the_producer_works_while_the_consumer_is_busy() -> None:
    second_started = threading.Event()

    def produce(_halt: threading.Event) -> Iterator[int]:
        yield 1
        second_started.set()
        yield 2

    with closing(Prefetcher(produce, depth=1, name="t")) as ahead:
        for item in ahead:
            if item == 1:  # "embedding" the first item; the second is being produced
                assert second_started.wait(5)


def test_a_producer_error_is_raised_in_the_consumer() -> None:
    def produce(_halt: threading.Event) -> Iterator[int]:
        yield 1
        raise ValueError("parser pool broke")

    got: list[int] = []
    with pytest.raises(ValueError, match="parser pool broke"):
        with closing(Prefetcher(produce, depth=1, name="t")) as ahead:
            got.extend(ahead)
    assert got == [1]


def test_stopping_early_halts_and_closes_the_iterator_in_the_producer_thread() -> None:
    closed_in: list[str] = []

    def produce(halt: threading.Event) -> Iterator[int]:
        try:
            i = 0
            while not halt.is_set():
                yield i
                i += 1
        finally:
            closed_in.append(threading.current_thread().name)

    with closing(Prefetcher(produce, depth=1, name="producer")) as ahead:
        for item in ahead:
            if item == 3:
                break
    assert closed_in == ["producer"]
    assert not ahead.producing
