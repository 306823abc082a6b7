"""The index contract: Chroma collections, chunk ids and metadata keys.

This is the one module that knows how chunks are named and described in Chroma;
the service reads the index through it. One Chroma collection per Inhouse
collection (a metadata filter costs ~10x on every query), named
``inhouse-<collection>`` (or ``inhouse-<collection>.g<N>`` once re-embedded: the alias
registry of ``ingest.aliases`` says which one serves), cosine space, with the embedder's
name, dimension and model folder in its metadata so a mismatch is an error rather than
silent mixing.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ingest.aliases import CHROMA_PREFIX, Aliases, parse_physical
from ingest.embed import EmbedderInfo
from ingest.errors import CollectionNotFound, EmbedderMismatch, IndexUnavailable
from ingest.settings import IngestSettings, validate_collection_name

SCHEMA_VERSION = 1

# Chunk metadata keys (the contract with service/).
META_COLLECTION = "collection"
META_DOCUMENT_ID = "document_id"
META_SOURCE = "source"  # path relative to the scanned root
META_TITLE = "title"  # document title, or its file name
META_FILE_TYPE = "file_type"
META_PAGE_START = "page_start"  # absent where the format has no pages
META_PAGE_END = "page_end"
META_SECTION = "section"
META_POSITION = "position"
META_CHUNK_HASH = "chunk_hash"
META_DOC_HASH = "doc_hash"  # content hash of the whole file this chunk came from
META_IS_TABLE = "is_table"

# Collection metadata keys.
COLL_EMBEDDER = "inhouse_embedder"
COLL_DIMENSION = "inhouse_dimension"
COLL_EMBEDDER_PATH = "inhouse_embedder_path"  # absent for the packaged default model
COLL_SCHEMA = "inhouse_schema"
COLL_NAME = "inhouse_collection"
# Generation marker for derived indexes (``ingest.lexical``): "w:<uuid>" while a run
# writes, "c:<uuid>" once it has finished; absent on collections written before it existed.
COLL_GENERATION = "inhouse_generation"
NO_GENERATION = "c:none"


def document_id(collection: str, root: str, relative_path: str) -> str:
    """Stable id of a document: collection + scanned root + path relative to it."""
    key = f"{collection}\n{root}\n{relative_path}".encode()
    return hashlib.sha256(key).hexdigest()[:24]


def chunk_hash(text: str) -> str:
    """Content hash of one chunk's text."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def chunk_id(doc_id: str, position: int, text_hash: str) -> str:
    """Deterministic chunk id: document id + chunk position + content hash."""
    return f"{chunk_id_prefix(doc_id, position)}{text_hash[:16]}"


def chunk_id_prefix(doc_id: str, position: int) -> str:
    """How the id of the chunk at ``position`` of ``doc_id`` begins, whatever its text."""
    return f"{doc_id}:{position:05d}:"


def chunk_document(cid: str) -> str:
    """The document id inside a chunk id (``chunk_id``'s first part)."""
    return cid.rsplit(":", 2)[0]


def chroma_name(collection: str) -> str:
    """Chroma name of a collection's first generation (``ChromaIndex`` follows the alias)."""
    return CHROMA_PREFIX + validate_collection_name(collection)


def recorded_embedder(meta: dict[str, Any]) -> EmbedderInfo:
    """The encoder a physical collection's metadata records."""
    path = meta.get(COLL_EMBEDDER_PATH)
    dimension = int(meta.get(COLL_DIMENSION) or 0)
    return EmbedderInfo(str(meta.get(COLL_EMBEDDER)), dimension, str(path) if path else None)


def collection_metadata(name: str, embedder: EmbedderInfo) -> dict[str, Any]:
    """Metadata of a new physical collection of ``name`` built with ``embedder``."""
    meta: dict[str, Any] = {
        COLL_NAME: name,
        COLL_EMBEDDER: embedder.name,
        COLL_DIMENSION: embedder.dimension,
        COLL_SCHEMA: SCHEMA_VERSION,
    }
    if embedder.path:
        meta[COLL_EMBEDDER_PATH] = embedder.path
    return meta


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk ready for Chroma."""

    id: str
    text: str
    metadata: dict[str, str | int | float | bool]


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieval result."""

    id: str
    text: str
    metadata: dict[str, Any]
    score: float  # cosine similarity, 1.0 = identical


OPEN_ATTEMPTS = 8


def make_chroma_client(settings: IngestSettings) -> Any:
    """Embedded PersistentClient under the data dir, or HttpClient when ``chroma_url`` is set.

    Opening is retried briefly: processes that open a new embedded store at the same moment
    (service + worker) race on its schema creation ("table ... already exists").
    """
    delay = 0.1
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            return _open_chroma(settings)
        except Exception as exc:  # chroma raises many types; all mean "cannot open the index"
            if attempt == OPEN_ATTEMPTS:
                where = settings.chroma_url or str(settings.chroma_dir)
                raise IndexUnavailable(f"cannot open the Chroma index at {where}: {exc}") from exc
            _forget_cached_client(settings)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def _open_chroma(settings: IngestSettings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(
            host=url.hostname or "127.0.0.1",
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    settings.ensure_data_dir()
    client = chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    client.heartbeat()
    return client


def _forget_cached_client(settings: IngestSettings) -> None:
    """Drop chromadb's per-path cached system so a retry really reopens the store."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
    except Exception:  # noqa: BLE001 - best effort: older/newer chromadb layouts
        return


class ChromaIndex:
    """Reads and writes Inhouse collections in Chroma for one embedder."""

    def __init__(self, client: Any, embedder: EmbedderInfo) -> None:
        self._client = client
        self._embedder = embedder
        self._collections: dict[str, Any] = {}
        self._writing: set[str] = set()  # collections this instance marked "w:" and not settled
        self.aliases = Aliases(client)
        self.max_batch = int(getattr(client, "get_max_batch_size", lambda: 5000)())

    @property
    def embedder(self) -> EmbedderInfo:
        return self._embedder

    def collection(self, name: str, *, create: bool = False) -> Any:
        """The Chroma collection serving ``name``, checked against this embedder."""
        if create and name not in self._collections:
            validate_collection_name(name)
            self._collections[name] = self._client.get_or_create_collection(
                self.aliases.resolve(name),
                embedding_function=None,
                metadata=collection_metadata(name, self._embedder),
                configuration={"hnsw": {"space": "cosine"}},
            )
        coll = self.handle(name)
        self.check_embedder(name, coll, self._embedder)
        return coll

    def handle(self, name: str) -> Any:
        """The Chroma collection serving ``name`` (cached; no embedder check)."""
        if name in self._collections:
            return self._collections[name]
        try:
            coll = self._client.get_collection(
                self.aliases.resolve(validate_collection_name(name)), embedding_function=None
            )
        except Exception as exc:
            raise CollectionNotFound(f"collection {name!r} does not exist") from exc
        self._collections[name] = coll
        return coll

    def refresh(self, name: str) -> bool:
        """Follow a switch made since ``name`` was opened (one registry read): forget the
        cached collection if another generation serves now. Returns whether it did."""
        coll = self._collections.get(name)
        if coll is None or coll.name == self.aliases.resolve(name):
            return False
        self._collections.pop(name, None)
        return True

    @staticmethod
    def check_embedder(name: str, coll: Any, embedder: EmbedderInfo) -> None:
        """Raise ``EmbedderMismatch`` unless ``coll`` was built with ``embedder``."""
        stored = recorded_embedder(dict(coll.metadata or {}))
        if (stored.name, stored.dimension) != (embedder.name, embedder.dimension):
            raise EmbedderMismatch(
                f"collection {name!r} was built with embedder {stored.name!r}"
                f" ({stored.dimension} dims); this run uses {embedder.name!r}"
                f" ({embedder.dimension} dims). Rebuild it with the configured encoder"
                f" (`inhouse reindex --reembed {name}`), or set INHOUSE_EMBED__MODEL_PATH"
                " (and INHOUSE_EMBED__QUANTIZE) to the encoder it was built with."
            )

    def collections(self) -> list[str]:
        """Names of the Inhouse collections in the store (each once, whatever its generation)."""
        names = set()
        for coll in self._client.list_collections():
            parsed = parse_physical(coll if isinstance(coll, str) else coll.name)
            if parsed is not None:
                names.add(parsed[0])
        return sorted(names)

    def describe(self, name: str) -> tuple[dict[str, Any], int]:
        """Collection metadata and chunk count, without the embedder check (for status)."""
        coll = self._client.get_collection(self.aliases.resolve(name), embedding_function=None)
        return dict(coll.metadata or {}), int(coll.count())

    def has_collection(self, name: str) -> bool:
        return name in self.collections()

    # -- generation marker ------------------------------------------------------------------
    def _physical(self, name: str) -> str:
        cached = self._collections.get(name)
        return str(cached.name) if cached is not None else self.aliases.resolve(name)

    def generation(self, name: str) -> str:
        """The collection's generation marker, read fresh (one metadata read, ~0.4 ms)."""
        coll = self._client.get_collection(self._physical(name), embedding_function=None)
        return str((coll.metadata or {}).get(COLL_GENERATION) or NO_GENERATION)

    def _set_generation(self, name: str, marker: str) -> None:
        coll = self._client.get_collection(self._physical(name), embedding_function=None)
        coll.modify(metadata={**(coll.metadata or {}), COLL_GENERATION: marker})

    def _mark_writing(self, name: str) -> None:
        """Before this instance's first write to ``name``: readers resync while it writes."""
        if name not in self._writing:
            self._set_generation(name, f"w:{uuid.uuid4().hex}")
            self._writing.add(name)

    def begin_writing(self, name: str) -> None:
        """A fresh writing marker now, whatever this instance marked before (a queued run
        whose writes come from many workers: ``ingest.queue_worker``)."""
        self._writing.discard(name)
        self._mark_writing(name)

    def settle(self, name: str) -> bool:
        """After a run: a new clean marker if this instance wrote, or a crashed run left a
        writing marker. Returns whether it changed the marker (nothing changes otherwise)."""
        if not self.has_collection(name):
            self._writing.discard(name)
            return False
        if name not in self._writing and not self.generation(name).startswith("w:"):
            return False
        self._set_generation(name, f"c:{uuid.uuid4().hex}")
        self._writing.discard(name)
        return True

    def upsert(self, collection: str, chunks: Sequence[StoredChunk], vectors: np.ndarray) -> None:
        """Write chunks (idempotent: same ids overwrite)."""
        coll = self.collection(collection, create=True)
        self._mark_writing(collection)
        for start in range(0, len(chunks), self.max_batch):
            part = chunks[start : start + self.max_batch]
            coll.upsert(
                ids=[c.id for c in part],
                documents=[c.text for c in part],
                metadatas=[c.metadata for c in part],
                embeddings=vectors[start : start + len(part)],
            )

    def delete_document(
        self, collection: str, doc_id: str, *, keep_doc_hash: str | None = None
    ) -> None:
        """Delete a document's chunks, or only those not from ``keep_doc_hash``."""
        if not self.has_collection(collection):
            return
        coll = self.collection(collection)
        self._mark_writing(collection)
        where: dict[str, Any] = {META_DOCUMENT_ID: doc_id}
        if keep_doc_hash is not None:
            where = {"$and": [where, {META_DOC_HASH: {"$ne": keep_doc_hash}}]}
        coll.delete(where=where)

    def document_chunks(self, collection: str, doc_id: str) -> list[dict[str, Any]]:
        """Metadata of every chunk of one document (with ``id``)."""
        if not self.has_collection(collection):
            return []
        got = self.collection(collection).get(
            where={META_DOCUMENT_ID: doc_id}, include=["metadatas"]
        )
        return [dict(meta or {}, id=cid) for cid, meta in zip(got["ids"], got["metadatas"])]

    def chunk_doc_ids(self, collection: str) -> dict[str, str]:
        """Every chunk id in a collection mapped to its document id (orphan sweeps)."""
        if not self.has_collection(collection):
            return {}
        coll = self.collection(collection)
        out: dict[str, str] = {}
        total = coll.count()
        for offset in range(0, total, self.max_batch):
            got = coll.get(include=["metadatas"], limit=self.max_batch, offset=offset)
            for cid, meta in zip(got["ids"], got["metadatas"]):
                out[cid] = str((meta or {}).get(META_DOCUMENT_ID, ""))
        return out

    def count(self, collection: str) -> int:
        if not self.has_collection(collection):
            return 0
        return int(self.collection(collection).count())

    def query(
        self,
        collection: str,
        vector: np.ndarray,
        k: int,
        where: dict[str, Any] | None = None,
        *,
        embedder: EmbedderInfo | None = None,
    ) -> list[Hit]:
        """Nearest chunks of one collection (cosine) to ``vector``, made by ``embedder``
        (default: this index's); a collection built with another encoder raises
        ``EmbedderMismatch`` before Chroma sees the vector."""
        coll = self.handle(collection)
        self.check_embedder(collection, coll, embedder or self._embedder)
        res = coll.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=k,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        hits = []
        for cid, text, meta, dist in zip(
            res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0]
        ):
            hits.append(Hit(id=cid, text=text or "", metadata=dict(meta or {}), score=1.0 - dist))
        return hits

    def nearest_among(
        self,
        collection: str,
        ids: Sequence[str],
        vector: np.ndarray,
        k: int,
        *,
        embedder: EmbedderInfo | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` of the chunks ``ids`` nearest (cosine) to ``vector``, best first, read
        by id: for a handful of known chunks, cheaper than a filtered nearest-neighbour
        search, which an index of 100k chunks answers slowly for a filter that small."""
        if not ids:
            return []
        coll = self.handle(collection)
        self.check_embedder(collection, coll, embedder or self._embedder)
        got = coll.get(ids=list(ids), include=["embeddings"])
        found = got["embeddings"]
        if found is None or not len(found):
            return []
        scores = np.asarray(found, dtype=np.float32) @ np.asarray(vector, dtype=np.float32)
        best = np.argsort(-scores)[:k]
        return [(str(got["ids"][i]), float(scores[i])) for i in best]

    def drop_collection(self, collection: str) -> None:
        """Drop every generation of ``collection`` (the serving one first), then its alias."""
        live = self.aliases.resolve(collection)
        found = self.aliases.generations(collection)
        for cname in sorted(found.values(), key=lambda c: c != live):
            self._client.delete_collection(cname)
        if found or live != chroma_name(collection):
            self.aliases.remove(collection)
        self._collections.pop(collection, None)
        self._writing.discard(collection)
