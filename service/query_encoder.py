"""Question embeddings with micro-batching: questions that arrive together share one
forward pass of the encoder.

One worker thread takes the first waiting question, then every other question already
waiting (up to ``max_batch``), and encodes them in one call. An idle service therefore
adds no delay (a batch of one starts at once), and a burst of concurrent questions costs
a few batched passes instead of one pass each fighting for the same cores.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.embed import Embedder

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Job:
    text: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[np.ndarray]


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the asking request was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class BatchingEncoder:
    """``await encode(text)`` from any event loop; encoding happens on one worker thread."""

    def __init__(self, embedder: Embedder, max_batch: int = 64) -> None:
        self._embedder = embedder
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def encode(self, text: str) -> np.ndarray:
        """The unit vector of ``text``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._start()
        self._queue.put(_Job(text, loop, future))
        return await future

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="query-encoder", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop the worker thread once the questions already queued are answered."""
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(job)
            self._encode(batch)

    def _encode(self, batch: list[_Job]) -> None:
        try:
            vectors = self._embedder.encode([job.text for job in batch])
        except Exception as exc:  # every waiting request gets the failure
            results: list[tuple[Any, BaseException | None]] = [(None, exc)] * len(batch)
        else:
            results = [(vector, None) for vector in vectors]
        for job, (value, error) in zip(batch, results):
            try:
                job.loop.call_soon_threadsafe(_settle, job.future, value, error)
            except RuntimeError:  # that event loop is closed: nobody is waiting
                log.debug("query encoder: dropping a result for a closed event loop")
