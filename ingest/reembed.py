"""Rebuild a collection with another encoder, no gap in search (``inhouse reindex --reembed``).

Why from the index, not the files: Chroma already holds every chunk's passage and metadata,
and the encoder's input is that passage behind a context line rebuilt from the metadata
(``Chunker.embedding_text``: file name - section), so re-embedding needs no parser, no
original file (moved, changed or offline sources are rebuilt as they were indexed) and
takes encoder time only: parsing is most of an ingest (SciFact: 12,102 chunks re-embed in
minutes; the first ingest took 2,614 s). Chunk boundaries and ids stay as they are.

Steps; a ``kill -9`` anywhere leaves the old generation serving and a rerun converges:
1. The collection's ingest lock (``Database.lock``, named by ``ingest.locks.
   collection_lock_name``) is held throughout, so ingest runs wait for the switch instead
   of writing into the generation being copied: on every host sharing a PostgreSQL
   database, on this host with the SQLite default (other hosts: see step 4). Runs of the
   work queue (``ingest.workqueue``) take no lock: holding it, the rebuild refuses while
   the queue has an open run of the collection, and queue workers hold off the
   collection's items while the lock is held (they stay queued and run after the switch).
2. The serving generation L comes from the alias registry (``ingest.aliases``). If it
   records the configured encoder already, there is nothing to build (``--force``: build
   anyway); leftover generations of a switched or abandoned build are dropped.
3. Generation T = L + 1 is created beside L (``inhouse-<name>.g<N>``), recording the new
   encoder and that it is built from L. Chunks are read from L by id in pages, embedded
   and upserted into T under the same ids. A T left by a killed run for the same encoder
   and the same L is resumed: only the ids it lacks are embedded.
4. Ids of L and T are compared again until equal (chunks a writer elsewhere added or
   removed meanwhile are caught up); T gets a clean lexical generation marker, and this
   host's lexical mirror of T is seeded from L's (same ids, same texts) and synced.
5. Switch: the alias record points at T, one atomic upsert. Before it, every reader
   searched L with L's encoder; T, perhaps of another dimension, was never queried.
6. L is dropped with this host's mirror of it; the manifest rows name the new encoder.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ingest.aliases import generation_of, physical_name
from ingest.chunk import Chunker
from ingest.db import open_database
from ingest.embed import Embedder, EmbedderInfo
from ingest.errors import CollectionNotFound
from ingest.index import (
    COLL_GENERATION,
    META_SECTION,
    META_SOURCE,
    ChromaIndex,
    collection_metadata,
    make_chroma_client,
    recorded_embedder,
)
from ingest.lexical import LexicalIndexes
from ingest.locks import FileLock, collection_lock_name
from ingest.manifest import Manifest
from ingest.queue_reads import QueueReads
from ingest.queue_records import QueuedRunOpen
from ingest.settings import IngestSettings, validate_collection_name

PAGE = 256  # chunks read, embedded and written per step
ID_PAGE = 5000
COLL_BUILT_FROM = "inhouse_reembed_from"
MAX_ROUNDS = 5  # catch-up passes before giving up on a collection that keeps changing


class ReembedListener(Protocol):
    """Progress of a rebuild (the CLI's progress bar; tests stop a run at a chosen point)."""

    def on_start(self, total: int) -> None: ...

    def on_progress(self, done: int, total: int) -> None: ...

    def on_stage(self, stage: str) -> None: ...  # "built", "switched", "dropped"


@dataclass(slots=True)
class ReembedReport:
    """What ``inhouse reindex --reembed --json`` prints."""

    collection: str
    outcome: str = "switched"  # or "unchanged": it already records the encoder
    from_generation: str = ""
    to_generation: str = ""
    from_embedder: dict[str, Any] = field(default_factory=dict)
    to_embedder: dict[str, Any] = field(default_factory=dict)
    chunks: int = 0  # in the serving generation after the run
    embedded: int = 0  # embedded by this run
    resumed: int = 0  # already in a generation a killed run had left
    removed: int = 0  # dropped from the new generation while catching up
    dropped: list[str] = field(default_factory=list)  # physical collections dropped
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Reembedder:
    """Rebuilds collections of one data dir with the configured encoder."""

    def __init__(
        self,
        settings: IngestSettings,
        *,
        embedder: Embedder | None = None,
        client: Any = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder or Embedder(settings.embed)
        self._client = client
        self._timings: dict[str, float] = {}

    def run(
        self,
        name: str,
        *,
        force: bool = False,
        wait: float | None = None,
        listener: ReembedListener | None = None,
    ) -> ReembedReport:
        """Rebuild ``name`` with the configured encoder and switch to it (see module doc).

        ``wait``: seconds to wait for an ingest run holding the collection (None: as long
        as it takes); raises ``ingest.locks.LockBusy`` when it does not end in time, and
        ``QueuedRunOpen`` (a ``LockBusy``) at once while the work queue has an open run
        of the collection (its workers write chunks with the current encoder).
        """
        validate_collection_name(name)
        started = time.monotonic()
        self._timings = {"load": 0.0, "lock_wait": 0.0, "read": 0.0, "embed": 0.0, "write": 0.0}
        self.embedder.model  # noqa: B018  (load: a custom model's name and dimension)
        info = self.embedder.info
        self._timings["load"] = time.monotonic() - started
        client = self._client if self._client is not None else make_chroma_client(self.settings)
        index = ChromaIndex(client, info)
        db = open_database(self.settings)
        try:
            lock = db.lock(collection_lock_name(name))
            clock = time.monotonic()
            lock.acquire(timeout=wait)
            self._timings["lock_wait"] = time.monotonic() - clock
            try:
                queued = QueueReads(db).open_runs(collection=name)
                if queued:  # checked under the lock: workers hold off while it is held
                    raise QueuedRunOpen(name, queued)
                report = self._run_locked(index, client, name, info, force, listener)
            finally:
                lock.release()
        finally:
            db.dispose()
        report.timings_s = {k: round(v, 3) for k, v in self._timings.items()}
        report.timings_s["total"] = round(time.monotonic() - started, 3)
        return report

    def _run_locked(
        self,
        index: ChromaIndex,
        client: Any,
        name: str,
        info: EmbedderInfo,
        force: bool,
        listener: ReembedListener | None,
    ) -> ReembedReport:
        live_name = index.aliases.resolve(name)
        try:
            live = client.get_collection(live_name, embedding_function=None)
        except Exception as exc:
            raise CollectionNotFound(f"collection {name!r} does not exist") from exc
        old = recorded_embedder(dict(live.metadata or {}))
        report = ReembedReport(
            collection=name,
            from_generation=live_name,
            from_embedder=_describe(old),
            to_embedder=_describe(info),
        )
        target_name = physical_name(name, generation_of(live_name) + 1)
        report.dropped = self._drop_leftovers(client, index, name, live_name, target_name, info)
        if not force and _same(old, info):
            report.outcome = "unchanged"
            report.to_generation = live_name
            report.chunks = int(live.count())
            self._record_in_manifest(name, info)
            return report
        target = self._target(client, name, live_name, target_name, info)
        report.to_generation = target_name
        self._build(live, target, report, listener)
        self._seed_lexical(live, target)
        if listener:
            listener.on_stage("built")
        clock = time.monotonic()
        index.aliases.point(name, target_name)  # the switch
        self._timings["switch"] = time.monotonic() - clock
        if listener:
            listener.on_stage("switched")
        clock = time.monotonic()
        self._drop(client, live)
        report.dropped.append(live_name)
        self._record_in_manifest(name, info)
        self._timings["drop"] = time.monotonic() - clock
        if listener:
            listener.on_stage("dropped")
        report.chunks = int(target.count())
        return report

    # -- generations ----------------------------------------------------------------------
    def _drop_leftovers(
        self,
        client: Any,
        index: ChromaIndex,
        name: str,
        live_name: str,
        target_name: str,
        info: EmbedderInfo,
    ) -> list[str]:
        """Drop generations other than the serving one, except a resumable build."""
        dropped = []
        for cname in index.aliases.generations(name).values():
            if cname == live_name:
                continue
            if cname == target_name:
                coll = client.get_collection(cname, embedding_function=None)
                meta = dict(coll.metadata or {})
                if meta.get(COLL_BUILT_FROM) == live_name and _same(recorded_embedder(meta), info):
                    continue  # a killed run's build for this encoder: resume it
                self._drop(client, coll)
            else:
                self._drop(client, client.get_collection(cname, embedding_function=None))
            dropped.append(cname)
        return dropped

    def _target(
        self, client: Any, name: str, live_name: str, target_name: str, info: EmbedderInfo
    ) -> Any:
        meta = collection_metadata(name, info)
        meta[COLL_BUILT_FROM] = live_name
        meta[COLL_GENERATION] = f"w:{uuid.uuid4().hex}"
        return client.get_or_create_collection(
            target_name,
            embedding_function=None,
            metadata=meta,
            configuration={"hnsw": {"space": "cosine"}},
        )

    def _drop(self, client: Any, coll: Any) -> None:
        """Drop a physical collection and this host's lexical mirror of it."""
        client.delete_collection(coll.name)
        shutil.rmtree(self._lexical_root / str(coll.id), ignore_errors=True)

    @property
    def _lexical_root(self) -> Path:
        return self.settings.data_dir / "lexical"

    # -- copying --------------------------------------------------------------------------
    def _build(
        self, live: Any, target: Any, report: ReembedReport, listener: ReembedListener | None
    ) -> None:
        chunker = Chunker.for_embedder(self.settings.chunk, self.embedder)
        for round_ in range(MAX_ROUNDS):
            want, have = _ids(live), _ids(target)
            missing = [cid for cid in want if cid not in have]
            extra = [cid for cid in have if cid not in want]
            if round_ == 0:
                report.resumed = len(have) - len(extra)
                if listener:
                    listener.on_start(len(missing))
            if not missing and not extra:
                return
            for start in range(0, len(extra), ID_PAGE):
                target.delete(ids=extra[start : start + ID_PAGE])
            report.removed += len(extra)
            for start in range(0, len(missing), PAGE):
                report.embedded += self._copy(live, target, missing[start : start + PAGE], chunker)
                if listener:
                    listener.on_progress(min(start + PAGE, len(missing)), len(missing))
        raise RuntimeError(
            f"collection {report.collection!r} kept changing during {MAX_ROUNDS} catch-up passes;"
            " run the re-embed again when its ingest runs are done"
        )

    def _copy(self, live: Any, target: Any, ids: list[str], chunker: Chunker) -> int:
        clock = time.monotonic()
        got = live.get(ids=ids, include=["documents", "metadatas"])
        self._timings["read"] += time.monotonic() - clock
        if not got["ids"]:
            return 0
        texts = [text or "" for text in got["documents"]]
        metas = [dict(meta or {}) for meta in got["metadatas"]]
        inputs = [
            chunker.embedding_text(
                Path(str(meta.get(META_SOURCE, ""))).name, meta.get(META_SECTION) or None, text
            )
            for text, meta in zip(texts, metas)
        ]
        clock = time.monotonic()
        vectors = self.embedder.encode(inputs)
        self._timings["embed"] += time.monotonic() - clock
        clock = time.monotonic()
        target.upsert(ids=got["ids"], documents=texts, metadatas=metas, embeddings=vectors)
        self._timings["write"] += time.monotonic() - clock
        return len(got["ids"])

    def _seed_lexical(self, live: Any, target: Any) -> None:
        """T's clean marker, and this host's lexical mirror of T built from L's copy."""
        clock = time.monotonic()
        marker = f"c:{uuid.uuid4().hex}"
        target.modify(metadata={**(target.metadata or {}), COLL_GENERATION: marker})
        source = self._lexical_root / str(live.id) / "tantivy"
        dest = self._lexical_root / str(target.id)
        if source.is_dir() and not (dest / "tantivy").exists():
            dest.mkdir(parents=True, exist_ok=True)
            with FileLock(source.parent / "sync.lock"):  # no sync writes L's files meanwhile
                shutil.copytree(source, dest / "tantivy.tmp", dirs_exist_ok=True)
            (dest / "tantivy.tmp").rename(dest / "tantivy")
        mirrors = LexicalIndexes(self._lexical_root, self.settings.retrieval.refresh_s)
        mirrors.for_collection(target).sync(target, marker)  # only the difference, if any
        self._timings["lexical"] = time.monotonic() - clock

    def _record_in_manifest(self, name: str, info: EmbedderInfo) -> None:
        manifest = Manifest.open(self.settings)
        try:
            manifest.set_embedder(name, info.name)
        finally:
            manifest.close()


def _ids(coll: Any) -> dict[str, None]:
    """Every chunk id of ``coll``, in storage order (a dict: ordered, fast membership)."""
    out: dict[str, None] = {}
    total = int(coll.count())
    for offset in range(0, total, ID_PAGE):
        out.update(dict.fromkeys(coll.get(include=[], limit=ID_PAGE, offset=offset)["ids"]))
    return out


def _same(a: EmbedderInfo, b: EmbedderInfo) -> bool:
    return (a.name, a.dimension, a.path) == (b.name, b.dimension, b.path)


def _describe(info: EmbedderInfo) -> dict[str, Any]:
    return {"name": info.name, "dimension": info.dimension, "path": info.path}
