"""Writing documents into a data dir's index and manifest.

``DocumentWriter`` holds the per-document steps that ``ingest.pipeline``'s numbered
crash-safety rules govern: ``store`` (``prepare`` -> ``embed`` -> ``write``), ``write_many``
(each rule applied to a batch of documents at once), ``fail`` (a rejected file), ``refuse``
(a path out of its root), ``remove`` (chunks, then the row) and ``settle`` (the end of a
writing run). The pipeline's run, ``ingest.batching``, ``ingest.bundles`` and the queue
worker (``ingest.queue_worker``) all write through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ingest.chunk import Chunker
from ingest.discover import DiscoveredFile
from ingest.documents import Chunk, ParsedDocument
from ingest.embed import Embedder
from ingest.errors import EmptyFile, FileRejected, OutsideRoot
from ingest.index import (
    META_CHUNK_HASH,
    META_COLLECTION,
    META_DOC_HASH,
    META_DOCUMENT_ID,
    META_FILE_TYPE,
    META_IS_TABLE,
    META_PAGE_END,
    META_PAGE_START,
    META_POSITION,
    META_SECTION,
    META_SOURCE,
    META_TITLE,
    ChromaIndex,
    StoredChunk,
    chunk_hash,
    chunk_id,
    document_id,
    make_chroma_client,
)
from ingest.jobs import Job, Prepared, display_title, file_result
from ingest.lexical import LexicalIndexes
from ingest.manifest import DocumentRecord, IndexedDocument, Manifest, PendingDocument
from ingest.report import FileResult
from ingest.settings import IngestSettings

ENCODE_SLICE = 128  # texts per encode call; the thread count is chosen per slice


class DocumentWriter:
    """Stores, fails, refuses and removes documents; the index and chunker load on first use."""

    def __init__(
        self,
        settings: IngestSettings,
        embedder: Embedder,
        manifest: Manifest,
        index: ChromaIndex | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.manifest = manifest
        self._index = index
        self._chunker: Chunker | None = None

    @property
    def index(self) -> ChromaIndex:
        """The Chroma index (the embedder is loaded first if its name and size are unknown)."""
        if self._index is None:
            if not self.embedder.info_is_loaded:
                self.embedder.model  # noqa: B018  (a custom model: load to learn name/dimension)
            self._index = ChromaIndex(make_chroma_client(self.settings), self.embedder.info)
        return self._index

    @property
    def chunker(self) -> Chunker:
        """The chunker, measuring with the embedder's tokenizer."""
        if self._chunker is None:
            self._chunker = Chunker.for_embedder(self.settings.chunk, self.embedder)
        return self._chunker

    def store(
        self,
        collection: str,
        job: Job,
        parsed: ParsedDocument | FileRejected,
        *,
        busy_cores: Callable[[], int] = lambda: 0,
    ) -> FileResult:
        """Chunk, embed and store one parsed file (``busy_cores()``: cores parsers use now)."""
        prepared = self.prepare(collection, job, parsed)
        if isinstance(prepared, FileResult):
            return prepared
        return self.write(collection, prepared, self.embed(prepared.texts, busy_cores))

    def prepare(
        self, collection: str, job: Job, parsed: ParsedDocument | FileRejected
    ) -> Prepared | FileResult:
        """The chunks of a parsed file, ready to embed; or the failure's result."""
        if isinstance(parsed, FileRejected):
            return self.fail(collection, job, parsed)
        title = display_title(parsed.title, Path(job.file.relative).name)
        chunks = self.chunker.chunk(parsed, Path(job.file.relative).name)
        if not chunks:
            return self.fail(collection, job, EmptyFile("the document contains no text"))
        return Prepared(job, parsed, title, chunks)

    def write(self, collection: str, prepared: Prepared, vectors: np.ndarray) -> FileResult:
        """Store one document's embedded chunks by the numbered rules (module docstring)."""
        return self.write_many(collection, [(prepared, vectors)])[0]

    def write_many(
        self, collection: str, items: Sequence[tuple[Prepared, np.ndarray]]
    ) -> list[FileResult]:
        """Store several documents' embedded chunks, each by the numbered rules, in bulk.

        (1) one transaction marks every row ``pending``; (2) one upsert stores all their
        chunks; (3) each document that had a row before this run loses its other versions;
        (4) one transaction marks every row ``indexed``. A crash at any step leaves each
        document ``pending`` with its old chunks (or none before its first run), or done.
        """
        stored = [
            [self._stored_chunk(collection, p.job, p.parsed, p.title, c) for c in p.chunks]
            for p, _ in items
        ]
        self.manifest.begin_documents(
            [
                PendingDocument(
                    doc_id=p.job.doc_id,
                    collection=collection,
                    root=str(p.job.file.root),
                    path=p.job.file.relative,
                    size=p.job.file.size,
                    mtime_ns=p.job.file.mtime_ns,
                    pending_hash=p.job.content_hash,
                    embedder=self.embedder.info.name,
                )
                for p, _ in items
            ]
        )
        chunks = [chunk for doc in stored for chunk in doc]
        self.index.upsert(collection, chunks, np.concatenate([v for _, v in items]))
        for p, _ in items:
            if p.job.record is not None:  # no row before this run: no chunks of another version
                self.index.delete_document(
                    collection, p.job.doc_id, keep_doc_hash=p.job.content_hash
                )
        self.manifest.finish_indexed_many(
            [
                IndexedDocument(
                    doc_id=p.job.doc_id,
                    content_hash=p.job.content_hash,
                    chunk_count=len(doc),
                    file_type=p.parsed.file_type,
                    title=p.title,
                    page_count=p.parsed.page_count,
                )
                for (p, _), doc in zip(items, stored)
            ]
        )
        results = []
        for (p, _), doc in zip(items, stored):
            result = file_result(p.job.file, p.job.doc_id, "indexed", file_type=p.parsed.file_type)
            result.chunks = len(doc)
            result.pages = p.parsed.page_count
            results.append(result)
        return results

    def embed(self, texts: list[str], busy_cores: Callable[[], int]) -> np.ndarray:
        """Encode ``texts`` slice by slice, leaving the cores that parsers use to them.

        Torch threads that share a core with a parser process slow down far more than the
        core's share, so while parsers run the encoder uses the remaining cores only, and
        all of them again as soon as the parsers are idle.
        """
        parts = []
        for start in range(0, len(texts), ENCODE_SLICE):
            busy = busy_cores()
            threads = max(1, self.embedder.threads - busy) if busy else None
            parts.append(self.embedder.encode(texts[start : start + ENCODE_SLICE], threads=threads))
        return np.concatenate(parts)

    def _stored_chunk(
        self, collection: str, job: Job, parsed: ParsedDocument, title: str, chunk: Chunk
    ) -> StoredChunk:
        text_hash = chunk_hash(chunk.text)
        meta: dict[str, str | int | float | bool] = {
            META_COLLECTION: collection,
            META_DOCUMENT_ID: job.doc_id,
            META_SOURCE: job.file.relative,
            META_TITLE: title,
            META_FILE_TYPE: parsed.file_type,
            META_POSITION: chunk.position,
            META_CHUNK_HASH: text_hash,
            META_DOC_HASH: job.content_hash,
            META_IS_TABLE: chunk.is_table,
        }
        if chunk.section_title:
            meta[META_SECTION] = chunk.section_title
        if chunk.pages:
            meta[META_PAGE_START] = chunk.pages[0]
            meta[META_PAGE_END] = chunk.pages[-1]
        return StoredChunk(
            id=chunk_id(job.doc_id, chunk.position, text_hash),
            text=chunk.body or chunk.text,
            metadata=meta,
        )

    def fail(self, collection: str, job: Job, error: FileRejected) -> FileResult:
        """Record a rejected file; an indexed earlier version stays searchable."""
        file, record = job.file, job.record
        if record is not None and record.status == "indexed":
            # Keep the last good version searchable; retry when the file changes again.
            self.manifest.note_error(job.doc_id, code=error.code, message=error.message)
            message = f"{error.message} (the previously indexed version is kept)"
            return file_result(file, job.doc_id, "failed", error.code, message)
        self.index.delete_document(collection, job.doc_id)  # leftovers of a crashed attempt
        self.manifest.record_failure(
            doc_id=job.doc_id,
            collection=collection,
            root=str(file.root),
            path=file.relative,
            size=file.size,
            mtime_ns=file.mtime_ns,
            content_hash=job.content_hash,
            code=error.code,
            message=error.message,
        )
        return file_result(file, job.doc_id, "failed", error.code, error.message)

    def refuse(self, collection: str, file: DiscoveredFile, message: str) -> FileResult:
        """A path that leads out of its root: never read; chunks of an earlier run dropped."""
        doc_id = document_id(collection, str(file.root), file.relative)
        error = OutsideRoot(message)
        self.index.delete_document(collection, doc_id)
        self.manifest.record_failure(
            doc_id=doc_id,
            collection=collection,
            root=str(file.root),
            path=file.relative,
            size=0,
            mtime_ns=file.mtime_ns,
            content_hash=None,
            code=error.code,
            message=error.message,
        )
        return file_result(file, doc_id, "failed", error.code, error.message)

    def remove(self, record: DocumentRecord) -> FileResult:
        """Drop a document: its chunks, then its manifest row."""
        self.index.delete_document(record.collection, record.id)
        self.manifest.delete(record.id)
        return FileResult(
            path=record.path,
            root=record.root,
            document_id=record.id,
            status="removed",
            file_type=record.file_type,
        )

    def settle(self, collection: str) -> None:
        """End of a writing run: a clean generation marker, this host's lexical mirror synced."""
        if not self.index.settle(collection):
            return
        coll = self.index.collection(collection)
        marker = self.index.generation(collection)
        lexical = LexicalIndexes(
            self.settings.data_dir / "lexical", self.settings.retrieval.refresh_s
        )
        lexical.for_collection(coll).sync(coll, marker)
