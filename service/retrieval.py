"""Retrieval: embed the question, search each collection's own Chroma collection, merge.

One Chroma collection per Inhouse collection, so selecting collections is selecting
what to search (no metadata filter, no filtering of results afterwards). The question
is embedded with the same encoder the collections were built with; a collection built
with another one raises ``EmbedderMismatch`` instead of returning nonsense. Every call
into the encoder, Chroma or the manifest runs in a worker thread: the event loop
never blocks on them; questions asked at the same time are embedded in one batch
(``service.query_encoder``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from anyio import to_thread

from ingest.embed import Embedder
from ingest.errors import CollectionNotFound, EmbedderMismatch, IndexUnavailable
from ingest.index import COLL_EMBEDDER, META_COLLECTION, ChromaIndex, Hit
from ingest.manifest import Manifest
from service.auth import audit
from service.auth.caller import searchable
from service.caller import Caller
from service.errors import NoDocuments
from service.query_encoder import BatchingEncoder

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """What ``GET /v1/collections`` says about one collection."""

    name: str
    documents: int  # indexed documents
    chunks: int
    failed: int
    pending: int
    embedder: str | None
    last_indexed_at: str | None


class Retriever:
    """Nearest chunks for a question over a set of collections."""

    def __init__(self, client: Any, embedder: Embedder, manifest: Manifest) -> None:
        """``client``: a Chroma client (``ingest.index.make_chroma_client``)."""
        self._client = client
        self._embedder = embedder
        self._manifest = manifest
        self._index = ChromaIndex(client, embedder.info)
        self._encoder = BatchingEncoder(embedder)

    @property
    def index(self) -> ChromaIndex:
        return self._index

    def _reopen(self) -> ChromaIndex:
        """A fresh index view (no cached collection handles) for the encoder as loaded."""
        self._index = ChromaIndex(self._client, self._embedder.info)
        return self._index

    async def search(
        self, text: str, collections: Sequence[str], top_k: int, *, caller: Caller
    ) -> list[Hit]:
        """The ``top_k`` best chunks over ``collections``, best first.

        The collection ACL applies here, before Chroma is touched: a collection ``caller``
        may not read is a 403 ``Forbidden`` (``searchable``), so only the caller's own
        collections are ever queried. The searched collections and returned chunk and
        document ids go to the audit log. Raises ``CollectionNotFound``,
        ``EmbedderMismatch``, ``IndexUnavailable``, or ``NoDocuments`` when the searched
        collections hold no chunks at all.
        """
        names = list(dict.fromkeys(collections))
        if not names:
            raise NoDocuments("no documents are indexed yet: add some with `inhouse ingest PATH`")
        names = searchable(caller, names, ())
        audit.note_search(names)  # recorded even if the search then fails
        vector = await self._encoder.encode(text)
        hits = await to_thread.run_sync(self._search, vector, names, top_k)
        audit.note_search(names, hits)
        return hits

    def close(self) -> None:
        """Stop the question encoder's worker thread."""
        self._encoder.close()

    def _search(self, vector: np.ndarray, names: list[str], top_k: int) -> list[Hit]:
        if self._index.embedder != self._embedder.info:  # the encoder finished loading
            self._reopen()
        for name in names:  # every collection must exist and match the encoder
            self._collection(name)
        hits: list[Hit] = []
        for name in names:
            hits.extend(
                hit
                if hit.metadata.get(META_COLLECTION) == name
                else Hit(hit.id, hit.text, {**hit.metadata, META_COLLECTION: name}, hit.score)
                for hit in self._query(name, vector, top_k)
            )
        if not hits:
            listed = ", ".join(names)
            raise NoDocuments(
                f"no documents in {listed}: add some with `inhouse ingest PATH --collection"
                f" {names[0]}`",
                collections=names,
            )
        hits.sort(key=lambda hit: hit.score, reverse=True)
        return hits[:top_k]

    def _collection(self, name: str) -> Any:
        try:
            return self._index.collection(name)
        except (CollectionNotFound, EmbedderMismatch):
            raise
        except Exception as exc:  # chroma raises many types; all mean "cannot read the index"
            raise IndexUnavailable(f"cannot read collection {name!r}: {exc}") from exc

    def _query(self, name: str, vector: Any, top_k: int) -> list[Hit]:
        try:
            return self._index.query(name, vector, top_k)
        except Exception as first:
            # The collection may have been dropped and re-created by an ingest run in
            # another process: forget the cached handle and look it up once more.
            log.info("collection %s: re-opening after %s", name, type(first).__name__)
            self._reopen()
            self._collection(name)
            try:
                return self._index.query(name, vector, top_k)
            except Exception as exc:
                raise IndexUnavailable(f"cannot search collection {name!r}: {exc}") from exc

    async def collection_names(self) -> list[str]:
        """Names of the collections in the index."""
        return await to_thread.run_sync(self._names)

    def _names(self) -> list[str]:
        try:
            return self._index.collections()
        except Exception as exc:
            raise IndexUnavailable(f"cannot list collections: {exc}") from exc

    async def describe(self, names: Sequence[str]) -> list[CollectionInfo]:
        """Document and chunk counts of ``names`` (collections in the index or the manifest)."""
        return await to_thread.run_sync(self._describe, list(names))

    def _describe(self, names: list[str]) -> list[CollectionInfo]:
        rows = self._manifest.execute(
            """SELECT collection, status, COUNT(*) AS n, MAX(indexed_at) AS last
               FROM documents GROUP BY collection, status"""
        )
        counts: dict[str, dict[str, int]] = {}
        last: dict[str, str] = {}
        for row in rows:
            counts.setdefault(row["collection"], {})[row["status"]] = int(row["n"])
            if row["last"]:
                last[row["collection"]] = max(last.get(row["collection"], ""), row["last"])
        in_index = set(self._names())
        out = []
        for name in names:
            meta, chunks = self._index.describe(name) if name in in_index else ({}, 0)
            by_status = counts.get(name, {})
            out.append(
                CollectionInfo(
                    name=name,
                    documents=by_status.get("indexed", 0),
                    chunks=chunks,
                    failed=by_status.get("failed", 0),
                    pending=by_status.get("pending", 0),
                    embedder=meta.get(COLL_EMBEDDER),
                    last_indexed_at=last.get(name),
                )
            )
        return out

    async def failures(self, names: Sequence[str]) -> list[dict[str, str]]:
        """Documents of ``names`` that could not be indexed: collection, path, code, message."""
        wanted = list(names)

        def read() -> list[dict[str, str]]:
            marks = ",".join("?" * len(wanted))
            rows = self._manifest.execute(
                "SELECT collection, path, error_code, error_message, updated_at FROM documents"
                f" WHERE status = 'failed' AND collection IN ({marks})"
                " ORDER BY collection, error_code, path",
                tuple(wanted),
            )
            return [{k: str(r[k] or "") for k in r.keys()} for r in rows]

        return await to_thread.run_sync(read) if wanted else []

    async def known_collections(self) -> list[str]:
        """Collections in the index or the manifest (e.g. all of whose files failed)."""
        return await to_thread.run_sync(self._known)

    def _known(self) -> list[str]:
        return sorted(set(self._names()) | set(self._manifest.collections()))

    async def check(self) -> str:
        """Readiness: the index answers. Returns a short description."""
        names = await self.collection_names()
        return f"{len(names)} collection(s)"
