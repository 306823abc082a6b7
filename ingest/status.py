"""What the index holds: one typed record per collection, rendered by ``inhouse index
status`` and ``GET /v1/collections`` alike.

``documents`` means the indexed documents (what a question can find) in both; the record
keeps the breakdown: ``indexed``, ``failed``, ``pending`` rows and failures by reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ingest.embed import Embedder
from ingest.index import COLL_DIMENSION, COLL_EMBEDDER, ChromaIndex, make_chroma_client
from ingest.manifest import DocumentCounts, Manifest
from ingest.readers import readers_status
from ingest.settings import IngestSettings


@dataclass(frozen=True, slots=True)
class CollectionStatus:
    name: str
    documents: int  # indexed documents: what a question can find
    indexed: int
    failed: int
    pending: int
    chunks: int  # in the index
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    embedder: str | None = None
    dimension: int | None = None
    last_indexed_at: str | None = None


def collection_statuses(
    manifest: Manifest, index: ChromaIndex, names: Iterable[str], in_index: Iterable[str]
) -> list[CollectionStatus]:
    """Status of ``names`` (collections in the index, ``in_index``, or only in the manifest)."""
    counts = manifest.counts()
    stored = set(in_index)
    out = []
    for name in names:
        meta, chunks = index.describe(name) if name in stored else ({}, 0)
        rows = counts.get(name, DocumentCounts())
        out.append(
            CollectionStatus(
                name=name,
                documents=rows.indexed,
                indexed=rows.indexed,
                failed=rows.failed,
                pending=rows.pending,
                chunks=chunks,
                failures_by_reason=rows.failures_by_reason,
                embedder=meta.get(COLL_EMBEDDER),
                dimension=meta.get(COLL_DIMENSION),
                last_indexed_at=rows.last_indexed_at,
            )
        )
    return out


def index_status(settings: IngestSettings) -> dict[str, Any]:
    """``inhouse index status --json`` (reads the manifest and Chroma, loads no model)."""
    manifest = Manifest.open(settings)
    try:
        index = ChromaIndex(make_chroma_client(settings), Embedder(settings.embed).info)
        in_index = index.collections()
        names = sorted(set(manifest.collections()) | set(in_index))
        collections = collection_statuses(manifest, index, names, in_index)
        readers = readers_status(settings.parse.ocr_languages, settings.parse.ocr is not False)
        return {
            "data_dir": str(settings.data_dir.resolve()),
            "collections": [asdict(status) for status in collections],
            "readers": readers,
        }
    finally:
        manifest.close()
