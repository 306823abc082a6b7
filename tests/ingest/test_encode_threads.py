"""The ingest encoder's thread count follows measured speed: the faster of all allowed cores
and one thread, the other timed again now and then."""

from __future__ import annotations

import numpy as np

from ingest.embed import Embedder
from ingest.encode_threads import ThreadChooser


def test_each_count_is_timed_first_then_the_faster_is_used() -> None:
    chooser = ThreadChooser(explore_every=100)
    assert chooser.choose(2) == 2
    chooser.record(2, 1000, 2.0)  # two threads: 2 ms per character (a loaded machine)
    assert chooser.choose(2) == 1
    chooser.record(1, 1000, 1.0)
    assert [chooser.choose(2) for _ in range(5)] == [1] * 5


def test_more_threads_win_when_they_are_faster() -> None:
    chooser = ThreadChooser(explore_every=100)
    chooser.record(4, 1000, 0.5)
    chooser.record(1, 1000, 1.5)
    assert [chooser.choose(4) for _ in range(5)] == [4] * 5


def test_the_other_count_is_retimed_and_a_change_of_load_is_followed() -> None:
    chooser = ThreadChooser(explore_every=4)
    chooser.record(2, 1000, 2.0)
    chooser.record(1, 1000, 1.0)
    picks = [chooser.choose(2) for _ in range(8)]
    assert picks.count(2) == 2 and picks.count(1) == 6  # every fourth call tries two threads
    for _ in range(3):  # the load is gone: two threads now take half the time
        chooser.record(2, 1000, 0.4)
    assert chooser.speed(2) is not None and chooser.speed(2) < chooser.speed(1)  # type: ignore[operator]
    assert chooser.choose(2) == 2


def test_one_allowed_core_means_one_thread_and_empty_calls_teach_nothing() -> None:
    chooser = ThreadChooser()
    assert chooser.choose(1) == 1
    chooser.record(2, 0, 5.0)
    assert chooser.speed(2) is None


class _Timed(Embedder):
    """Records the threads each call asks for; takes longer with two threads."""

    def __init__(self) -> None:
        super().__init__()
        self.threads = 2
        self.asked: list[int | None] = []

    def encode(self, texts: list[str], *, threads: int | None = None) -> np.ndarray:
        self.asked.append(threads)
        if threads is None:  # all cores: slow, as on a loaded machine
            import time

            time.sleep(0.05)
        return np.zeros((len(texts), 384), dtype=np.float32)


def test_encode_fastest_times_calls_and_moves_to_the_faster_count() -> None:
    embedder = _Timed()
    texts = ["a passage about the travel budget"] * 4
    for _ in range(4):
        assert embedder.encode_fastest(texts, most=2).shape == (4, 384)
    # all cores (None: the process-wide setting), then one thread, then one thread again
    assert embedder.asked == [None, 1, 1, 1]
    embedder.encode_fastest(texts, most=1)
    assert embedder.asked[-1] == 1
