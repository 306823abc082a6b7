"""What the service reads about collections besides their passages: names, counts,
failed documents, readiness (the ``Retriever``'s base; it sets ``_index`` and ``_manifest``)."""

from __future__ import annotations

from collections.abc import Sequence

from anyio import to_thread

from ingest.errors import IndexUnavailable
from ingest.index import ChromaIndex
from ingest.manifest import DocumentRecord, Manifest
from ingest.status import CollectionStatus, collection_statuses


class CollectionReads:
    """Collection names, statuses and failures, each read in a worker thread."""

    _index: ChromaIndex
    _manifest: Manifest

    async def collection_names(self) -> list[str]:
        """Names of the collections in the index."""
        return await to_thread.run_sync(self._names)

    def _names(self) -> list[str]:
        try:
            return self._index.collections()
        except Exception as exc:
            raise IndexUnavailable(f"cannot list collections: {exc}") from exc

    async def describe(self, names: Sequence[str]) -> list[CollectionStatus]:
        """Document and chunk counts of ``names`` (collections in the index or the manifest)."""
        return await to_thread.run_sync(self._describe, list(names))

    def _describe(self, names: list[str]) -> list[CollectionStatus]:
        return collection_statuses(self._manifest, self._index, names, self._names())

    async def failures(self, names: Sequence[str]) -> list[DocumentRecord]:
        """Documents of ``names`` that could not be indexed, by collection, reason and path."""
        return await to_thread.run_sync(self._manifest.failed, list(names))

    async def known_collections(self) -> list[str]:
        """Collections in the index or the manifest (e.g. all of whose files failed)."""
        return await to_thread.run_sync(self._known)

    def _known(self) -> list[str]:
        return sorted(set(self._names()) | set(self._manifest.collections()))

    async def check(self) -> str:
        """Readiness: the index answers. Returns a short description."""
        names = await self.collection_names()
        return f"{len(names)} collection(s)"
