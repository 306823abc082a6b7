"""Question embeddings with micro-batching: questions that arrive together share one
forward pass of the encoder.

One worker thread takes the first waiting question, then every other question already
waiting (up to ``max_batch``), and encodes them in one call. An idle service therefore
adds no delay (a batch of one starts at once), and a burst of concurrent questions costs
a few batched passes instead of one pass each fighting for the same cores.

Which encoder: the one the searched collection records (``QueryEncoders``). The configured
encoder (``INHOUSE_EMBED__MODEL_PATH``, ``INHOUSE_EMBED__QUANTIZE``) answers for collections
built with it; a collection rebuilt with another model (``inhouse reindex --reembed``)
records that model's folder and whether it was quantized, and that encoder is loaded on
first use, so a running service follows a switch without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.embed import DEFAULT_MODEL_NAME, Embedder, EmbedderInfo, quantize_of, quantized_name
from ingest.errors import EmbedderMismatch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Job:
    texts: tuple[str, ...]  # encoded in the same batch
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[np.ndarray]]


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
        return (await self.encode_many([text]))[0]

    async def encode_many(self, texts: list[str]) -> list[np.ndarray]:
        """The unit vectors of ``texts``, encoded in one batch."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[np.ndarray]] = loop.create_future()
        self._start()
        self._queue.put(_Job(tuple(texts), loop, future))
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
            while sum(len(job.texts) for job in batch) < self.max_batch:
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
            vectors = list(self._embedder.encode([text for job in batch for text in job.texts]))
        except Exception as exc:  # every waiting request gets the failure
            results: list[tuple[Any, BaseException | None]] = [(None, exc)] * len(batch)
        else:
            results = []
            for job in batch:
                results.append((vectors[: len(job.texts)], None))
                vectors = vectors[len(job.texts) :]
        for job, (value, error) in zip(batch, results):
            try:
                job.loop.call_soon_threadsafe(_settle, job.future, value, error)
            except RuntimeError:  # that event loop is closed: nobody is waiting
                log.debug("query encoder: dropping a result for a closed event loop")


class QueryEncoders:
    """The question encoder for each collection: the configured one, or the one it records."""

    def __init__(self, configured: Embedder, max_batch: int = 64) -> None:
        self.configured = configured
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._encoders: dict[str | None, tuple[Embedder, BatchingEncoder]] = {
            None: (configured, BatchingEncoder(configured, max_batch))
        }

    def choose(self, recorded: EmbedderInfo) -> tuple[EmbedderInfo, BatchingEncoder]:
        """The encoder ``recorded`` names, and what it is (blocking: may load a model).

        The model folder a collection records wins over the configured encoder of the same
        name; the configured one answers for collections without a folder (the packaged
        default, collections written before folders were recorded). The packaged default is
        loaded as the collection records it, float or int8 (``INHOUSE_EMBED__QUANTIZE``). Raises
        ``EmbedderMismatch`` when no encoder here can embed for the collection.
        """
        if not self.configured.info_is_loaded:
            self.configured.model  # noqa: B018  (a custom model: load to learn its name)
        mine = self.configured.info
        key: str | None
        quantize = quantize_of(recorded.name)
        other = recorded.path != mine.path or recorded.name != mine.name
        if recorded.path and other and Path(recorded.path).is_dir():
            key, folder = quantized_name(recorded.path, quantize), Path(recorded.path)
        elif (recorded.name, recorded.dimension) == (mine.name, mine.dimension):
            key, folder = None, None
        elif recorded.name == quantized_name(DEFAULT_MODEL_NAME, quantize) and not recorded.path:
            key, folder = recorded.name, None
        else:
            raise EmbedderMismatch(
                f"the collection was built with embedder {recorded.name!r}"
                f" ({recorded.dimension} dims, folder {recorded.path or 'unknown'}), which this"
                f" service cannot load; it uses {mine.name!r}. Set INHOUSE_EMBED__MODEL_PATH to"
                " that encoder's folder, or rebuild the collection with `inhouse reindex"
                " --reembed`."
            )
        with self._lock:
            if key not in self._encoders:
                embedder = self.configured.sibling(folder, quantize)
                embedder.encode(["warm-up"])  # loads it; its name and dimension are known now
                log.info("question encoder %s loaded for a collection built with it", key)
                self._encoders[key] = (embedder, BatchingEncoder(embedder, self.max_batch))
            embedder, encoder = self._encoders[key]
        got = embedder.info
        if (got.name, got.dimension) != (recorded.name, recorded.dimension):
            raise EmbedderMismatch(
                f"the encoder in {key} is {got.name!r} ({got.dimension} dims); the collection"
                f" records {recorded.name!r} ({recorded.dimension} dims)"
            )
        return got, encoder

    def close(self) -> None:
        with self._lock:
            for _, encoder in self._encoders.values():
                encoder.close()


async def embed_question(
    text: str,
    plan: dict[str, tuple[EmbedderInfo, BatchingEncoder]],
    also: tuple[str, str] | None = None,
) -> tuple[dict[str, tuple[EmbedderInfo, np.ndarray]], tuple[EmbedderInfo, np.ndarray] | None]:
    """``text`` embedded once per encoder that ``plan`` (collection -> encoder) needs, by
    collection; and ``also`` = (collection, other text) embedded in the same batch as
    ``text`` by that collection's encoder (None without it)."""
    by_info: dict[EmbedderInfo, np.ndarray] = {}
    other = None
    for info, encoder in plan.values():
        if info in by_info:
            continue
        if also is not None and plan[also[0]][0] == info:
            by_info[info], vector = await encoder.encode_many([text, also[1]])
            other = (info, vector)
        else:
            by_info[info] = await encoder.encode(text)
    return {name: (info, by_info[info]) for name, (info, _) in plan.items()}, other
