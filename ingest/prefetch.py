"""Run an iterator in a background thread, a bounded number of items ahead of its consumer.

The pipeline uses it so the parser pool keeps parsing the next files while the main thread
chunks, embeds and stores the previous one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, cast

T = TypeVar("T")

_ITEM, _DONE, _ERROR = "item", "done", "error"
_POLL_S = 0.1


class Prefetcher(Generic[T]):
    """Iterates ``produce(halt)`` in its own thread, at most ``depth`` items ahead.

    ``produce`` receives the halt event and should end soon after it is set (the consumer
    sets it when it stops early). An exception raised by the producer is re-raised in the
    consumer. The producing iterator is created, advanced and closed in the producer thread.
    Use it under ``contextlib.closing`` so an early stop (or error) halts the producer.
    """

    def __init__(
        self, produce: Callable[[threading.Event], Iterator[T]], *, depth: int = 1, name: str
    ) -> None:
        self._produce = produce
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
        self.halt = threading.Event()
        self._waiting = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def producing(self) -> bool:
        """Whether the producer is at work now: not finished, not waiting for room."""
        return self._thread.is_alive() and not self._waiting

    @property
    def ready(self) -> bool:
        """Whether the next item (or the end) is already waiting for the consumer."""
        return not self._queue.empty()

    def _put(self, message: tuple[str, object]) -> bool:
        self._waiting = True
        try:
            while not self.halt.is_set():
                try:
                    self._queue.put(message, timeout=_POLL_S)
                    return True
                except queue.Full:
                    continue
            return False
        finally:
            self._waiting = False

    def _run(self) -> None:
        try:
            items = self._produce(self.halt)
            try:
                for item in items:
                    if not self._put((_ITEM, item)):
                        return
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
            self._put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((_ERROR, exc))

    def __iter__(self) -> Iterator[T]:
        while True:
            kind, payload = self._queue.get()
            if kind == _DONE:
                return
            if kind == _ERROR:
                raise cast(BaseException, payload)
            yield cast(T, payload)

    def close(self) -> None:
        """Stop the producer and wait for it (it closes its iterator in its own thread)."""
        self.halt.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        self._thread.join()
