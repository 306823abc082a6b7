"""The incremental ingest run: discover -> classify -> parse (isolated) -> chunk -> embed -> store.

Per document, in this order, so that a ``kill -9`` at any moment converges on rerun:
1. manifest row -> ``pending`` (with the new content hash) before Chroma is touched;
2. new chunks upserted (deterministic ids: same content -> same ids);
3. chunks of any other version of the document deleted;
4. manifest row -> ``indexed``.
A changed document always has chunks (old until 2 completes, new after), and a crash
leaves a ``pending`` row that the next run redoes. Removals delete chunks before the row.
Small documents are written in batches (``ingest.batching``): each step runs for every
document of the batch before the next step starts (one transaction for 1, one upsert for
2, one transaction for 4), so each document still passes 1-4 in order.
5. The lexical index is derived from Chroma (``ingest.lexical``): the first write of a run
   sets the collection's generation marker to "writing" (readers then resync
   periodically), the end of the run sets a new "clean" marker and brings this host's
   lexical mirror level with Chroma. A crash leaves a "writing" marker, which the next
   run settles; a run that writes nothing touches neither.
Parsing runs in worker processes while this process embeds, so the two overlap.
Archive members and e-mail attachments are documents of their own: ``ingest.bundles``.
The per-document writes are ``ingest.writer.DocumentWriter``'s (``IngestPipeline.writer``);
the records of a run's files (jobs, results, hashes) are in ``ingest.jobs``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Protocol

from ingest import bundles, observe
from ingest.batching import BATCH_DOCS, BatchWriter
from ingest.chunk import Chunker
from ingest.discover import DiscoveredFile, discover, still_inside
from ingest.documents import ParsedDocument
from ingest.embed import Embedder
from ingest.errors import FileRejected
from ingest.index import ChromaIndex, document_id
from ingest.jobs import Job, file_hash, file_result, unchanged_result
from ingest.locks import Lock, collection_lock_name
from ingest.manifest import Manifest, utc_now
from ingest.parser_load import parser_busy_cores
from ingest.prefetch import Prefetcher
from ingest.report import FileResult, IngestReport
from ingest.settings import IngestSettings, ParseSettings, validate_collection_name
from ingest.writer import DocumentWriter

PARSE_AHEAD = BATCH_DOCS  # parsed files waiting for the encoder: a batch's worth


class ParserLike(Protocol):
    """What the pipeline needs from a parser pool (``ingest.isolation.ParserPool``)."""

    def parse_many(
        self, items: Iterable[tuple[Job, Path]], *, stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[Job, ParsedDocument | FileRejected]]: ...

    def close(self) -> None: ...


ParserFactory = Callable[[ParseSettings, int], ParserLike]


class ProgressListener(Protocol):
    def on_start(self, total: int) -> None: ...

    def on_file(self, result: FileResult, done: int, total: int) -> None: ...


def default_parser_factory(settings: ParseSettings, workers: int) -> ParserLike:
    from ingest.isolation import ParserPool

    return ParserPool(settings, workers=workers)


class IngestPipeline:
    """Runs incremental ingests into one data dir; collaborators injectable for tests.

    Besides ``run``, the queue worker (``ingest.queue_worker``) drives the same steps one
    item at a time through ``classify``, ``writer`` and ``parser_factory``.
    """

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
        self.manifest = manifest or Manifest.open(settings)
        self.parser_factory = parser_factory  # also starts the queue worker's parsers
        # every write of a document goes through it, the queue worker's too
        self.writer = DocumentWriter(settings, self.embedder, self.manifest, index)

    @property
    def index(self) -> ChromaIndex:
        """The writer's Chroma index (opened on first use)."""
        return self.writer.index

    @property
    def chunker(self) -> Chunker:
        """The writer's chunker."""
        return self.writer.chunker

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
        listed: set[tuple[str, str]] = set()  # a file named twice is indexed once
        for path in paths:
            for file in discover(path, include=include, exclude=exclude, data_dir=data_dir):
                if (key := (str(file.root), file.relative)) not in listed:
                    listed.add(key)
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
                emit(self.writer.refuse(collection, file, file.refused or ""))
            with_members = bundles.emit_unchanged(self.manifest, collection, emit)
            jobs = self.classify(found, collection, full, with_members, stop)
            first = next(jobs, None)  # nothing changed: no parser processes at all
            if first is not None:
                # the encoder loads in this process while the parser processes start up
                threading.Thread(target=self._load_encoder, name="encoder-load").start()
                pool_size = workers or self.settings.parse.workers
                parser = self.parser_factory(self.settings.parse, pool_size)
                pending = ((j, j.file.path) for j in itertools.chain([first], jobs))

                def parse_ahead(
                    halt: threading.Event,
                ) -> Iterator[tuple[Job, ParsedDocument | FileRejected]]:
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
                    emit(self.writer.remove(record))
            self.writer.settle(collection)
        report.finished_at = utc_now()
        report.elapsed_s = time.monotonic() - started
        return report

    def classify(
        self,
        found: list[DiscoveredFile],
        collection: str,
        full: bool,
        emit: Callable[[FileResult], None],
        stop: threading.Event | None,
    ) -> Iterator[Job]:
        """Yield files that need parsing; report unchanged ones (stat check, then hash).

        Used by ``run`` and, one file per item, by the queue worker (``ingest.queue_worker``).
        """
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
                emit(unchanged_result(file, record))
                continue
            if not self._still_readable(collection, file, emit):
                continue
            try:
                digest = file_hash(file.path)
            except OSError as exc:
                emit(file_result(file, doc_id, "failed", "parse_error", f"cannot read: {exc}"))
                continue
            if settled and not full and record is not None and record.content_hash == digest:
                self.manifest.touch(doc_id, size=file.size, mtime_ns=file.mtime_ns)
                emit(unchanged_result(file, record))
                continue
            yield Job(file=file, doc_id=doc_id, content_hash=digest, record=record)

    def _load_encoder(self) -> None:
        try:
            self.embedder.model  # noqa: B018
            self.chunker.warm_up()  # while the parsers start: off the first file's path
        except Exception:  # noqa: S110  (raised again where the model is first needed)
            pass

    def _still_readable(
        self, collection: str, file: DiscoveredFile, emit: Callable[[FileResult], None]
    ) -> bool:
        """Re-check a file's real location just before it is read; report it if it moved out."""
        reason = still_inside(file, self.settings.data_dir)
        if reason is None:
            return True
        emit(self.writer.refuse(collection, file, f"not read: {reason}"))
        return False

    def remove_collection_documents(self, collection: str, root: str | None = None) -> int:
        """Drop every document of a collection (or of one root in it): chunks, then rows."""
        with self.collection_lock(collection):
            records = self.manifest.documents(collection, root=root)
            for record in records:
                self.writer.remove(record)
            self.writer.settle(collection)
        return len(records)

    def close(self) -> None:
        self.manifest.close()
