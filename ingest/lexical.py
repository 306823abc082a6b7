"""The lexical (BM25) index: a per-host tantivy mirror of each Chroma collection.

Design, and why:

- **Chroma is the one source of truth; the lexical index is derived from it.** Every chunk's
  text is already stored in Chroma, so the BM25 index of a collection is a cache that any
  process on any host can rebuild or bring up to date from Chroma alone. Replicas that
  share only the Chroma server (and PostgreSQL, issue 13) need nothing else shared, a
  missing or corrupt index is rebuilt with a log line instead of failing, and collections
  indexed before this index existed are backfilled the same way.
- **Sync by id difference.** Chunk ids are deterministic in the content (document id +
  position + text hash), so "which chunks does Chroma have that the mirror lacks, and the
  reverse" is the complete delta: listing ids costs ~0.2 s per 30k chunks (measured), the
  new chunks' texts come back in batches of 5,000, tantivy adds them and commits atomically.
  A sync is idempotent, so a kill -9 at any point (during ingest or during a sync) leaves a
  state the next sync converges from.
- **When to sync: a generation marker in Chroma's collection metadata**, which all processes
  see. A writer sets ``w:<uuid>`` before its first write of a run and ``c:<uuid>`` when the
  run ends (``ingest.index.ChromaIndex.mark_writing``/``mark_clean``: one metadata update
  each, ~25 ms, so an unchanged rerun writes nothing). A reader compares the marker with the
  one its mirror was synced at (``sync.json`` beside the tantivy files), ~0.4 ms per query:
  a new clean marker -> sync now, so a query after an ingest run ends sees all of it; a
  writing marker (an ingest in progress, or one killed mid-run) -> sync at most every
  ``refresh_s``. Hits are fetched from Chroma by id afterwards, so a chunk deleted since
  the last sync is never returned.
- **tantivy, not bm25s**: it adds and deletes documents incrementally with atomic commits
  (bm25s rebuilds the whole matrix: every sync would cost a full re-index) and indexes
  positions, which exact-phrase queries need. Searching 100k chunks takes a few ms.
- **Where**: ``<data dir>/lexical/<Chroma collection id>/``; the collection's UUID changes
  when it is dropped and re-created, so a mirror never outlives its collection. Processes
  on one host share the mirror; syncs are serialised by a file lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest import observe
from ingest.index import META_SOURCE, META_TITLE, chunk_document, chunk_id_prefix
from ingest.lexical_docs import DocumentIndex, DocumentMatch, committed_writer, group_by_document
from ingest.lexical_query import chunk_query, within_query
from ingest.lexical_text import ParsedQuery, body_tokens, identifiers
from ingest.locks import FileLock

log = logging.getLogger(__name__)

FETCH_BATCH = 5000
# 2: title and path beside the body; 3: whole documents (lexical_docs); 4: their openings;
# 5: each chunk's document id (ranking inside one document: ``search_within``)
SCHEMA_VERSION = 5


def chunk_key(chunk_id: str) -> int:
    """64-bit key of a chunk id (tantivy's fast fields are numeric)."""
    return int.from_bytes(hashlib.blake2b(chunk_id.encode(), digest_size=8).digest(), "big")


def _schema() -> Any:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("key", indexed=True, fast=True)
    builder.add_text_field("body", tokenizer_name="whitespace", index_option="position")
    builder.add_text_field("ident", tokenizer_name="whitespace", index_option="freq")
    builder.add_text_field("title", tokenizer_name="whitespace", index_option="basic")
    builder.add_text_field("doc", tokenizer_name="raw", index_option="basic")
    return builder.build()


def title_text(metadata: Mapping[str, Any] | None) -> str:
    """The document words of a chunk: its title and its path, as one text to tokenise."""
    meta = metadata or {}
    parts = [str(meta.get(name) or "") for name in (META_TITLE, META_SOURCE)]
    return " ".join(dict.fromkeys(part for part in parts if part))


@dataclass(frozen=True, slots=True)
class LexicalHit:
    id: str
    score: float


@dataclass(frozen=True, slots=True)
class SyncResult:
    added: int
    removed: int
    rebuilt: bool


class LexicalIndex:
    """The mirror of one Chroma collection on this host."""

    def __init__(self, root: Path, refresh_s: float = 5.0) -> None:
        self.root = root
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._index: Any = None
        self._schema: Any = None
        self._synced: str | None = None  # marker this process last saw the mirror synced at
        self._synced_at = 0.0
        self.documents = DocumentIndex(root / "docs")

    # -- state -----------------------------------------------------------------------------
    @property
    def _state_path(self) -> Path:
        return self.root / "sync.json"

    def _read_state(self) -> tuple[str | None, float, int]:
        """(marker, time, chunk count) of the last sync, from ``sync.json``."""
        try:
            state = json.loads(self._state_path.read_text())
            if state.get("schema") != SCHEMA_VERSION:
                return None, 0.0, -1
            return state.get("marker"), float(state.get("at", 0.0)), int(state.get("docs", -1))
        except (OSError, ValueError, AttributeError, TypeError):
            return None, 0.0, -1

    def _write_state(self, marker: str, docs: int) -> None:
        tmp = self.root / f"sync.json.{os.getpid()}.tmp"
        state = {"schema": SCHEMA_VERSION, "marker": marker, "at": time.time(), "docs": docs}
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self._state_path)

    def _open(self) -> Any:
        import tantivy

        if self._index is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._schema = _schema()
            tantivy_dir = self.root / "tantivy"
            if self._stale_schema():
                log.info("lexical index %s: older format; rebuilding it from Chroma", self.root)
                shutil.rmtree(tantivy_dir, ignore_errors=True)
                self.documents.wipe()
                self._state_path.unlink(missing_ok=True)
            tantivy_dir.mkdir(exist_ok=True)
            self._index = tantivy.Index(self._schema, path=str(tantivy_dir))
        return self._index

    def _stale_schema(self) -> bool:
        """Whether the files on disk were written with another schema version."""
        try:
            state = json.loads(self._state_path.read_text())
        except (OSError, ValueError):
            return False
        return isinstance(state, dict) and state.get("schema") != SCHEMA_VERSION

    def reset(self, reason: str = "reset") -> None:
        """Forget the mirror's files (the next query or sync rebuilds it from Chroma)."""
        with self._lock:
            self._wipe(reason)

    def _wipe(self, reason: str) -> None:
        log.warning("lexical index %s: %s; rebuilding it from Chroma", self.root, reason)
        self._index = None
        self._synced = None
        shutil.rmtree(self.root / "tantivy", ignore_errors=True)
        self.documents.wipe()
        self._state_path.unlink(missing_ok=True)

    # -- keeping up with Chroma -------------------------------------------------------------
    def ensure_current(self, marker: str, coll: Any) -> None:
        """Bring the mirror up to ``marker`` (the collection's generation) if it is behind."""
        clean = not marker.startswith("w:")
        if clean and self._synced == marker and self._index is not None:
            return
        if not clean and time.monotonic() - self._synced_at < self.refresh_s:
            if self._index is not None:
                return
        with self._lock:
            if clean and self._synced == marker and self._index is not None:
                return
            try:
                stored, at, docs = self._read_state()
                fresh = stored == marker and (clean or time.time() - at < self.refresh_s)
                first = self._index is None
                if fresh:
                    index = self._open()
                    index.reload()
                    count = index.searcher().num_docs
                    # files lost or replaced since the sync; on a first open, Chroma too
                    fresh = count == docs and (not first or count == int(coll.count()))
                    fresh = fresh and (count == 0 or self.documents.count() > 0)
                if not fresh:
                    self.sync(coll, marker)
            except Exception as exc:  # noqa: BLE001 - any tantivy failure means a bad mirror
                self._wipe(f"unreadable ({type(exc).__name__}: {exc})")
                self.sync(coll, marker)
            self._synced = marker
            self._synced_at = time.monotonic()

    def sync(self, coll: Any, marker: str | None) -> SyncResult:
        """Make the mirror hold exactly the chunks ``coll`` holds (under the host file lock)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(self.root / "sync.lock"):
            try:
                result = self._sync_locked(coll)
            except Exception as exc:  # noqa: BLE001 - corrupt files: rebuild from scratch
                if not _is_tantivy_error(exc):
                    raise
                self._wipe(f"unreadable ({type(exc).__name__}: {exc})")
                result = self._sync_locked(coll)
                result = SyncResult(result.added, result.removed, True)
            if marker is not None:
                self._write_state(marker, self._open().searcher().num_docs)
        observer = observe.current()
        if observer is not None:
            observer.lexical_synced(result)
        if result.added or result.removed:
            log.info(
                "lexical index %s: +%d -%d chunks%s",
                self.root.name,
                result.added,
                result.removed,
                " (rebuilt)" if result.rebuilt else "",
            )
        return result

    def _sync_locked(self, coll: Any) -> SyncResult:
        import tantivy

        index = self._open()
        have = self.keys()
        rebuilt = not have
        want: dict[int, str] = {}
        total = int(coll.count())
        for offset in range(0, total, FETCH_BATCH):
            for cid in coll.get(include=[], limit=FETCH_BATCH, offset=offset)["ids"]:
                want[chunk_key(cid)] = cid
        missing = [cid for key, cid in want.items() if key not in have]
        extra = [key for key in have if key not in want]
        # whole documents first: a kill between the two commits leaves chunks to add, so
        # the next sync comes back here (the documents' signatures make it idempotent)
        self.documents.sync(coll, group_by_document(want.values()), title_text)
        if not missing and not extra:
            return SyncResult(0, 0, False)
        added = 0
        with committed_writer(index) as writer:
            for key in extra:
                writer.delete_documents_by_query(tantivy.Query.term_query(self._schema, "key", key))
            for start in range(0, len(missing), FETCH_BATCH):
                got = coll.get(
                    ids=missing[start : start + FETCH_BATCH], include=["documents", "metadatas"]
                )
                for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"]):
                    writer.add_document(self._document(cid, text or "", title_text(meta)))
                    added += 1
        return SyncResult(added, len(extra), rebuilt and added > 0)

    def keys(self) -> set[int]:
        """Keys (``chunk_key``) of every chunk the mirror holds on disk now."""
        import tantivy

        index = self._open()
        index.reload()
        searcher = index.searcher()
        if not searcher.num_docs:
            return set()
        hits = searcher.search(tantivy.Query.all_query(), searcher.num_docs, count=False).hits
        return set(searcher.fast_field_values("key", [addr for _, addr in hits]))

    def _document(self, cid: str, text: str, title: str = "") -> Any:
        import tantivy

        doc = tantivy.Document()
        doc.add_text("id", cid)
        doc.add_unsigned("key", chunk_key(cid))
        doc.add_text("body", " ".join(body_tokens(text)))
        doc.add_text("ident", " ".join(identifiers(text)))
        doc.add_text("title", " ".join(dict.fromkeys(body_tokens(title))))
        doc.add_text("doc", chunk_document(cid))
        return doc

    # -- searching ------------------------------------------------------------------------
    def search_documents(
        self, query: ParsedQuery, k: int, head_weight: float = 1.0
    ) -> dict[str, DocumentMatch]:
        """Whole documents' matches (``ingest.lexical_docs``): document id -> match."""
        return self.documents.search(query, k, head_weight)

    def search(self, query: ParsedQuery, k: int) -> list[LexicalHit]:
        """BM25 top ``k`` for ``query`` (quoted phrases must match), best first."""
        if query.empty or self._index is None:
            return []
        return self._hits(chunk_query(self._schema, query), k)

    def _hits(self, query: Any, k: int) -> list[LexicalHit]:
        searcher = self._index.searcher()
        hits = searcher.search(query, k, count=False).hits
        return [LexicalHit(searcher.doc(addr)["id"][0], float(score)) for score, addr in hits]

    def naming_terms(self, query: ParsedQuery, document_id: str, share: float) -> set[str]:
        """The question's words that name ``document_id``: its opening holds them, and at
        most ``share`` of the collection's documents' openings do."""
        if query.empty:
            return set()
        return self.documents.naming(document_id, dict.fromkeys(query.terms), share)

    def opening_outnames(self, query: ParsedQuery, best: str, rivals: Sequence[str]) -> bool:
        """Whether the opening of document ``best`` holds more of the question's words that
        the opening of each of ``rivals`` lacks than that one holds and ``best``'s lacks
        (``ingest.lexical_docs``)."""
        terms = query.words
        return bool(terms) and self.documents.opening_outnames(best, rivals, terms)

    def chunk_count(self, document_id: str) -> int:
        """How many chunks of ``document_id`` the mirror holds."""
        if self._index is None:
            return 0
        return int(self._index.searcher().search(self._of(document_id), 1, count=True).count)

    def document_chunks(self, document_id: str, limit: int) -> list[str]:
        """Ids of up to ``limit`` chunks of ``document_id``."""
        if self._index is None:
            return []
        return [hit.id for hit in self._hits(self._of(document_id), limit)]

    def chunk_ids_at(self, document_id: str, positions: Sequence[int]) -> list[str]:
        """Ids of the chunks of ``document_id`` at ``positions`` (ids begin with both:
        ``ingest.index.chunk_id_prefix``); over 100k chunks a Chroma metadata filter for
        them took ~25 ms a document, this and a read by id ~1 ms."""
        if self._index is None or not positions:
            return []
        import tantivy

        def at(spot: int) -> Any:
            pattern = re.escape(chunk_id_prefix(document_id, spot)) + ".*"
            return (tantivy.Occur.Should, tantivy.Query.regex_query(self._schema, "id", pattern))

        query = tantivy.Query.boolean_query([at(spot) for spot in positions])
        return [hit.id for hit in self._hits(query, 2 * len(positions))]

    def _of(self, document_id: str) -> Any:
        """The query for every chunk of ``document_id``."""
        import tantivy

        return tantivy.Query.term_query(self._schema, "doc", document_id)

    def search_within(
        self, query: ParsedQuery, document_id: str, weights: Mapping[str, float], k: int
    ) -> list[LexicalHit]:
        """BM25 top ``k`` among one document's chunks; a word in ``weights`` counts that
        much (the others 1); quoted phrases must match."""
        if query.empty or self._index is None:
            return []
        return self._hits(within_query(self._schema, query, document_id, weights), k)


def _is_tantivy_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("tantivy") or isinstance(exc, ValueError | OSError)


class LexicalIndexes:
    """The mirrors of every collection, under one directory (``<data dir>/lexical``)."""

    def __init__(self, root: Path, refresh_s: float = 5.0) -> None:
        self.root = root
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._open: dict[str, LexicalIndex] = {}

    def for_collection(self, coll: Any) -> LexicalIndex:
        """The mirror of Chroma collection ``coll`` (keyed by its id)."""
        key = str(coll.id)
        with self._lock:
            index = self._open.get(key)
            if index is None:
                index = self._open[key] = LexicalIndex(self.root / key, self.refresh_s)
            return index

    def current(self, coll: Any, marker: str) -> LexicalIndex:
        """The mirror of ``coll``, brought up to ``marker`` first."""
        index = self.for_collection(coll)
        index.ensure_current(marker, coll)
        return index
