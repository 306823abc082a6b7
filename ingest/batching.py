"""Embedding and writing many small documents together, each still recoverable on its own.

With one encode call and one set of writes per file, a folder of small files (abstracts,
notes, e-mails of a few paragraphs) keeps the encoder at batches of one or two texts and
pays Chroma's and the manifest's per-call costs once per file. ``BatchWriter`` collects
parsed documents (chunked at once) until they hold ``BATCH_CHUNKS`` chunks or
``BATCH_DOCS`` documents, or until no parsed file is waiting (the encoder never idles for a
batch to fill), encodes all their chunks in one call, then writes them together, applying
each of the pipeline's numbered rules to the whole batch in turn: one manifest transaction
marks every row ``pending``, one upsert stores all their chunks, each document with an
earlier row loses its other versions, one transaction marks every row ``indexed``. Crash
safety stays per document: a document waiting in a batch has had nothing written, and a
``kill -9`` during a batch's writes leaves its documents ``pending`` (a changed one still
findable: old chunks, then old and new, then new) or ``indexed``; a rerun redoes them. A
file that fails (rejected, empty) is recorded when it is chunked and does not hold up the
others. Containers (archives, e-mails with attachments) and big documents go through
unbatched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest import bundles
from ingest.containers import CONTAINER_TYPES
from ingest.documents import ParsedDocument
from ingest.errors import FileRejected
from ingest.report import FileResult

if TYPE_CHECKING:
    from ingest.jobs import Prepared
    from ingest.pipeline import IngestPipeline

BATCH_CHUNKS = 64
"""Chunks that trigger a batch's encode (a document with more is encoded on its own)."""
BATCH_DOCS = 32
"""Documents that trigger a batch's encode however few chunks they hold."""


class BatchWriter:
    """Stores parsed files for one run: small documents batched, the rest one at a time."""

    def __init__(
        self,
        pipeline: IngestPipeline,
        collection: str,
        *,
        full: bool,
        busy_cores: Callable[[], int],
    ) -> None:
        self._writer = pipeline.writer
        self._collection = collection
        self._full = full
        self._busy_cores = busy_cores
        self._waiting: list[Prepared | FileResult] = []
        self._chunks = 0

    def add(
        self, job: Any, parsed: ParsedDocument | FileRejected, *, more_waiting: bool
    ) -> Iterator[FileResult]:
        """Store ``parsed`` now or later; yield the results of the files stored meanwhile.

        ``more_waiting``: another parsed file is ready; without one the batch is encoded now
        (waiting for the parser would leave the encoder idle)."""
        if not self._batchable(job, parsed):
            yield from self.flush()
            yield from bundles.store_with_members(
                self._writer,
                self._collection,
                job,
                parsed,
                full=self._full,
                busy_cores=self._busy_cores,
            )
            return
        prepared = self._writer.prepare(self._collection, job, parsed)
        self._waiting.append(prepared)
        if not isinstance(prepared, FileResult):
            self._chunks += len(prepared.chunks)
        if not more_waiting or self._chunks >= BATCH_CHUNKS or len(self._waiting) >= BATCH_DOCS:
            yield from self.flush()

    def flush(self) -> Iterator[FileResult]:
        """Encode the waiting documents' chunks in one call, write them together (each rule
        once for the whole batch: ``DocumentWriter.write_many``); yield results in order."""
        waiting, self._waiting, self._chunks = self._waiting, [], 0
        prepared = [item for item in waiting if not isinstance(item, FileResult)]
        texts = [t for item in prepared for t in item.texts]
        vectors = self._writer.embed(texts, self._busy_cores) if texts else np.zeros((0, 0))
        items, start = [], 0
        for item in prepared:
            items.append((item, vectors[start : start + len(item.chunks)]))
            start += len(item.chunks)
        written = iter(self._writer.write_many(self._collection, items) if items else [])
        for waited in waiting:  # failures were recorded when they were prepared
            yield waited if isinstance(waited, FileResult) else next(written)

    def abandon(self) -> Iterator[FileResult]:
        """On a stop: drop the documents waiting to be encoded (nothing of theirs is written
        yet, so the next run indexes them); yield the failures already recorded."""
        waiting, self._waiting, self._chunks = self._waiting, [], 0
        yield from (item for item in waiting if isinstance(item, FileResult))

    @staticmethod
    def _batchable(job: Any, parsed: ParsedDocument | FileRejected) -> bool:
        """A document without members whose previous version had none either."""
        if isinstance(parsed, ParsedDocument) and parsed.members:
            return False
        return not (job.record is not None and job.record.file_type in CONTAINER_TYPES)
