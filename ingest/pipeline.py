"""The incremental ingest run: discover -> classify -> parse (isolated) -> chunk -> embed -> store.

Per document, in this order, so that a ``kill -9`` at any moment converges on rerun:
1. manifest row -> ``pending`` (with the new content hash) before Chroma is touched;
2. new chunks upserted (deterministic ids: same content -> same ids);
3. chunks of any other version of the document deleted;
4. manifest row -> ``indexed``.
A changed document always has chunks (old until 2 completes, new after), and a crash
leaves a ``pending`` row that the next run redoes. Removals delete chunks before the row.
5. The lexical index is derived from Chroma (``ingest.lexical``): the first write of a run
   sets the collection's generation marker to "writing" (readers then resync
   periodically), the end of the run sets a new "clean" marker and brings this host's
   lexical mirror level with Chroma. A crash leaves a "writing" marker, which the next
   run settles; a run that writes nothing touches neither.
Parsing runs in worker processes while this process embeds, so the two overlap.
Archive members and e-mail attachments are documents of their own: ``ingest.bundles``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ingest import bundles, observe
from ingest.batching import BATCH_DOCS, BatchWriter
from ingest.chunk import Chunker
from ingest.discover import DiscoveredFile, discover, still_inside
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
from ingest.lexical import LexicalIndexes
from ingest.locks import Lock, collection_lock_name
from ingest.manifest import DocumentRecord, Manifest, utc_now
from ingest.parser_load import parser_busy_cores
from ingest.prefetch import Prefetcher
from ingest.report import FileResult, IngestReport
from ingest.settings import IngestSettings, ParseSettings, validate_collection_name

HASH_BLOCK = 1 << 20
ENCODE_SLICE = 128  # texts per encode call; the thread count is chosen per slice
PARSE_AHEAD = BATCH_DOCS  # parsed files waiting for the encoder: a batch's worth


class ParserLike(Protocol):
    """What the pipeline needs from a parser pool (``ingest.isolation.ParserPool``)."""

    def parse_many(
        self, items: Iterable[tuple[_Job, Path]], *, stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[_Job, ParsedDocument | FileRejected]]: ...

    def close(self) -> None: ...


ParserFactory = Callable[[ParseSettings, int], ParserLike]


class ProgressListener(Protocol):
    def on_start(self, total: int) -> None: ...

    def on_file(self, result: FileResult, done: int, total: int) -> None: ...


@dataclass(frozen=True, slots=True)
class _Job:
    file: DiscoveredFile
    doc_id: str
    content_hash: str
    record: DocumentRecord | None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A parsed document chunked and ready to embed and write."""

    job: _Job
    parsed: ParsedDocument
    title: str
    chunks: list[Chunk]

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.chunks]


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes (content only: no name, no timestamps)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def relative_message(message: str | None, root: Path) -> str | None:
    """A parser or OS message with the server's absolute root replaced: paths relative to it."""
    if not message:
        return message
    for folder in {str(root), os.path.realpath(root)}:
        message = message.replace(folder + os.sep, "").replace(folder, ".")
    return message


def display_title(metadata_title: str | None, file_name: str) -> str:
    """The document's own title when it reads like one, else its file name.

    Metadata titles are often junk (accession numbers, "Microsoft Word - doc1.docx").
    """
    title = " ".join((metadata_title or "").split())
    words = [w for w in title.split() if sum(ch.isalpha() for ch in w) >= 2]
    if len(words) < 2 or title.lower().startswith(("microsoft word", "untitled")):
        return file_name
    return title


def default_parser_factory(settings: ParseSettings, workers: int) -> ParserLike:
    from ingest.isolation import ParserPool

    return ParserPool(settings, workers=workers)


class IngestPipeline:
    """Runs incremental ingests into one data dir; collaborators injectable for tests."""

    def __init__(
        self,
        settings: IngestSettings,
        *,
        embedder: Embedder | None = None,
        index: ChromaIndex | None = None,
        manifest: Manifest | None = None,
        parser_factory: ParserFactory = default_parser_factory,
    ) -> None:
        self.settings = settings
        settings.ensure_data_dir()
        self.embedder = embedder or Embedder(settings.embed)
        self._index = index
        self.manifest = manifest or Manifest.open(settings)
        self._parser_factory = parser_factory
        self._chunker: Chunker | None = None

    @property
    def index(self) -> ChromaIndex:
        if self._index is None:
            if not self.embedder.info_is_loaded:
                self.embedder.model  # noqa: B018  (a custom model: load to learn name/dimension)
            self._index = ChromaIndex(make_chroma_client(self.settings), self.embedder.info)
        return self._index

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            self._chunker = Chunker(
                self.settings.chunk, self.embedder.tokenize, self.embedder.max_tokens
            )
        return self._chunker

    def collection_lock(self, collection: str) -> Lock:
        """Held by every writer of ``collection`` (ingest runs, re-embeds) on every host
        sharing the database (PostgreSQL); on this host with the SQLite default."""
        return self.manifest.db.lock(collection_lock_name(collection))

    # -- the run ------------------------------------------------------------------------
    def run(
        self,
        paths: Sequence[Path],
        collection: str,
        *,
        full: bool = False,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        workers: int | None = None,
        stop: threading.Event | None = None,
        listener: ProgressListener | None = None,
    ) -> IngestReport:
        """Bring ``collection`` in line with the files under ``paths``."""
        validate_collection_name(collection)
        started = time.monotonic()
        found: list[DiscoveredFile] = []
        refused: list[DiscoveredFile] = []  # symlinks out of the root, the data dir
        dir_roots: list[str] = []
        data_dir = self.settings.data_dir
        for path in paths:
            for file in discover(path, include=include, exclude=exclude, data_dir=data_dir):
                (refused if file.refused else found).append(file)
            if path.expanduser().resolve().is_dir():
                dir_roots.append(str(path.expanduser().resolve()))
        report = IngestReport(
            collection=collection,
            roots=sorted({str(f.root) for f in found + refused} | set(dir_roots)),
            started_at=utc_now(),
        )
        with self.collection_lock(collection):
            self.index.refresh(collection)  # re-embedded since this instance opened it
            self.index.collection(collection, create=True)  # embedder mismatch fails here
            seen_ids = {document_id(collection, str(f.root), f.relative) for f in found + refused}
            seen_paths = {(str(f.root), f.relative) for f in found + refused}
            stale = [
                record
                for root in dir_roots
                for record in self.manifest.documents(collection, root=root)
                if record.id not in seen_ids
                and not bundles.is_member(record.root, record.path, seen_paths)
            ]
            total = len(found) + len(refused) + len(stale)
            if listener:
                listener.on_start(total)
            done = 0
            emit_lock = threading.Lock()  # unchanged files are reported from the parse thread
            observer = observe.current()  # taken here: the parse thread has its own context

            def emit(result: FileResult) -> None:
                nonlocal done
                with emit_lock:
                    done += 1
                    report.files.append(result)
                    if listener:
                        listener.on_file(result, done, total)
                    if observer is not None:
                        observer.file_done(result)

            for file in refused:
                emit(self._refuse(collection, file, file.refused or ""))
            with_members = bundles.emit_unchanged(self.manifest, collection, emit)
            jobs = self._classify(found, collection, full, with_members, stop)
            first = next(jobs, None)  # nothing changed: no parser processes at all
            if first is not None:
                # the encoder loads in this process while the parser processes start up
                threading.Thread(target=self._load_encoder, name="encoder-load").start()
                pool_size = workers or self.settings.parse.workers
                parser = self._parser_factory(self.settings.parse, pool_size)
                pending = ((j, j.file.path) for j in itertools.chain([first], jobs))

                def parse_ahead(
                    halt: threading.Event,
                ) -> Iterator[tuple[_Job, ParsedDocument | FileRejected]]:
                    def halted() -> bool:
                        return halt.is_set() or (stop is not None and stop.is_set())

                    return parser.parse_many(pending, stop=halted)

                try:
                    # the parser works on the next files while this thread embeds and stores
                    ahead = Prefetcher(parse_ahead, depth=PARSE_AHEAD, name="parse-ahead")

                    parser_cores = parser_busy_cores(parser, pool_size)

                    def busy_cores() -> int:
                        return parser_cores() if ahead.producing else 0

                    writer = BatchWriter(self, collection, full=full, busy_cores=busy_cores)
                    with closing(ahead):
                        for job, parsed in ahead:
                            for result in writer.add(job, parsed, more_waiting=ahead.ready):
                                emit(result)
                            if stop is not None and stop.is_set():
                                break
                        # a stop ends the run promptly: files still waiting for the encoder
                        # have nothing written and are indexed by the next run
                        stopped = stop is not None and stop.is_set()
                        for result in writer.abandon() if stopped else writer.flush():
                            emit(result)
                finally:
                    parser.close()
            if stop is not None and stop.is_set():
                report.interrupted = True
            else:
                for record in stale:
                    emit(self._remove(record))
            self._settle(collection)
        report.finished_at = utc_now()
        report.elapsed_s = time.monotonic() - started
        return report

    def _classify(
        self,
        found: list[DiscoveredFile],
        collection: str,
        full: bool,
        emit: Callable[[FileResult], None],
        stop: threading.Event | None,
    ) -> Iterator[_Job]:
        """Yield files that need parsing; report unchanged ones (stat check, then hash)."""
        for file in found:
            if stop is not None and stop.is_set():
                return
            doc_id = document_id(collection, str(file.root), file.relative)
            record = self.manifest.get(doc_id)
            settled = record is not None and record.status in ("indexed", "failed")
            if (
                settled
                and not full
                and record is not None
                and (record.size, record.mtime_ns) == (file.size, file.mtime_ns)
            ):
                emit(self._unchanged(file, record))
                continue
            if not self._still_readable(collection, file, emit):
                continue
            try:
                digest = file_hash(file.path)
            except OSError as exc:
                emit(self._result(file, doc_id, "failed", "parse_error", f"cannot read: {exc}"))
                continue
            if settled and not full and record is not None and record.content_hash == digest:
                self.manifest.touch(doc_id, size=file.size, mtime_ns=file.mtime_ns)
                emit(self._unchanged(file, record))
                continue
            yield _Job(file=file, doc_id=doc_id, content_hash=digest, record=record)

    def _load_encoder(self) -> None:
        try:
            self.embedder.model  # noqa: B018
            self.chunker.warm_up()  # while the parsers start: off the first file's path
        except Exception:  # noqa: S110  (raised again where the model is first needed)
            pass

    # -- per-document steps ---------------------------------------------------------------
    def _store(
        self,
        collection: str,
        job: _Job,
        parsed: ParsedDocument | FileRejected,
        *,
        busy_cores: Callable[[], int] = lambda: 0,
    ) -> FileResult:
        """Chunk, embed and store one parsed file (``busy_cores()``: cores parsers use now)."""
        prepared = self._prepare(collection, job, parsed)
        if isinstance(prepared, FileResult):
            return prepared
        return self._write(collection, prepared, self._embed(prepared.texts, busy_cores))

    def _prepare(
        self, collection: str, job: _Job, parsed: ParsedDocument | FileRejected
    ) -> Prepared | FileResult:
        """The chunks of a parsed file, ready to embed; or the failure's result."""
        if isinstance(parsed, FileRejected):
            return self._fail(collection, job, parsed)
        title = display_title(parsed.title, Path(job.file.relative).name)
        chunks = self.chunker.chunk(parsed, Path(job.file.relative).name)
        if not chunks:
            return self._fail(collection, job, EmptyFile("the document contains no text"))
        return Prepared(job, parsed, title, chunks)

    def _write(self, collection: str, prepared: Prepared, vectors: np.ndarray) -> FileResult:
        """Store one document's embedded chunks by the numbered rules (module docstring)."""
        job, parsed, file = prepared.job, prepared.parsed, prepared.job.file
        stored = [
            self._stored_chunk(collection, job, parsed, prepared.title, c) for c in prepared.chunks
        ]
        self.manifest.begin_document(
            doc_id=job.doc_id,
            collection=collection,
            root=str(file.root),
            path=file.relative,
            size=file.size,
            mtime_ns=file.mtime_ns,
            pending_hash=job.content_hash,
            embedder=self.embedder.info.name,
        )
        self.index.upsert(collection, stored, vectors)
        if job.record is not None:  # no row before this run: no chunks of another version
            self.index.delete_document(collection, job.doc_id, keep_doc_hash=job.content_hash)
        self.manifest.finish_indexed(
            job.doc_id,
            content_hash=job.content_hash,
            chunk_count=len(stored),
            file_type=parsed.file_type,
            title=prepared.title,
            page_count=parsed.page_count,
        )
        result = self._result(file, job.doc_id, "indexed", file_type=parsed.file_type)
        result.chunks = len(stored)
        result.pages = parsed.page_count
        return result

    def _embed(self, texts: list[str], busy_cores: Callable[[], int]) -> np.ndarray:
        """Encode ``texts`` slice by slice, leaving the cores that parsers use to them.

        Torch threads that share a core with a parser process slow down far more than the
        core's share, so while parsers run the encoder uses the remaining cores only, and
        all of them again as soon as the parsers are idle; or one thread, when one has
        been measured faster (a loaded machine: ``ingest.encode_threads``).
        """
        parts = []
        for start in range(0, len(texts), ENCODE_SLICE):
            busy = busy_cores()
            most = max(1, self.embedder.threads - busy)
            parts.append(
                self.embedder.encode_fastest(texts[start : start + ENCODE_SLICE], most=most)
            )
        return np.concatenate(parts)

    def _stored_chunk(
        self, collection: str, job: _Job, parsed: ParsedDocument, title: str, chunk: Chunk
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

    def _fail(self, collection: str, job: _Job, error: FileRejected) -> FileResult:
        file, record = job.file, job.record
        if record is not None and record.status == "indexed":
            # Keep the last good version searchable; retry when the file changes again.
            self.manifest.note_error(job.doc_id, code=error.code, message=error.message)
            message = f"{error.message} (the previously indexed version is kept)"
            return self._result(file, job.doc_id, "failed", error.code, message)
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
        return self._result(file, job.doc_id, "failed", error.code, error.message)

    def _still_readable(
        self, collection: str, file: DiscoveredFile, emit: Callable[[FileResult], None]
    ) -> bool:
        """Re-check a file's real location just before it is read; report it if it moved out."""
        reason = still_inside(file, self.settings.data_dir)
        if reason is None:
            return True
        emit(self._refuse(collection, file, f"not read: {reason}"))
        return False

    def _refuse(self, collection: str, file: DiscoveredFile, message: str) -> FileResult:
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
        return self._result(file, doc_id, "failed", error.code, error.message)

    def _remove(self, record: DocumentRecord) -> FileResult:
        self.index.delete_document(record.collection, record.id)
        self.manifest.delete(record.id)
        return FileResult(
            path=record.path,
            root=record.root,
            document_id=record.id,
            status="removed",
            file_type=record.file_type,
        )

    def remove_collection_documents(self, collection: str, root: str | None = None) -> int:
        """Drop every document of a collection (or of one root in it): chunks, then rows."""
        with self.collection_lock(collection):
            records = self.manifest.documents(collection, root=root)
            for record in records:
                self._remove(record)
            self._settle(collection)
        return len(records)

    def _settle(self, collection: str) -> None:
        """End of a writing run: a clean generation marker, this host's lexical mirror synced."""
        if not self.index.settle(collection):
            return
        coll = self.index.collection(collection)
        marker = self.index.generation(collection)
        lexical = LexicalIndexes(
            self.settings.data_dir / "lexical", self.settings.retrieval.refresh_s
        )
        lexical.for_collection(coll).sync(coll, marker)

    def _unchanged(self, file: DiscoveredFile, record: DocumentRecord) -> FileResult:
        if record.status == "failed":
            return self._result(
                file,
                record.id,
                "failed",
                record.error_code,
                f"{record.error_message} (unchanged since the last attempt)",
                file_type=record.file_type,
            )
        result = self._result(file, record.id, "unchanged", file_type=record.file_type)
        result.chunks = record.chunk_count
        result.pages = record.page_count
        return result

    @staticmethod
    def _result(
        file: DiscoveredFile,
        doc_id: str,
        status: str,
        reason: str | None = None,
        message: str | None = None,
        file_type: str | None = None,
    ) -> FileResult:
        return FileResult(
            path=file.relative,
            root=str(file.root),
            document_id=doc_id,
            status=status,  # type: ignore[arg-type]
            reason=reason,
            message=relative_message(message, file.root),
            file_type=file_type,
            bytes=file.size,
        )

    def close(self) -> None:
        self.manifest.close()
