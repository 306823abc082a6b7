"""What the index holds: per-collection document and chunk counts, failures by reason."""

from __future__ import annotations

from typing import Any

from ingest.embed import Embedder
from ingest.index import COLL_DIMENSION, COLL_EMBEDDER, ChromaIndex, make_chroma_client
from ingest.manifest import Manifest
from ingest.readers import readers_status
from ingest.settings import IngestSettings


def index_status(settings: IngestSettings) -> dict[str, Any]:
    """Summary for ``inhouse index status`` (reads the manifest and Chroma, loads no model)."""
    manifest = Manifest(settings.manifest_path)
    try:
        index = ChromaIndex(make_chroma_client(settings), Embedder(settings.embed).info)
        names = sorted(set(manifest.collections()) | set(index.collections()))
        collections = []
        for name in names:
            rows = manifest.execute(
                """SELECT status, COUNT(*) AS n, COALESCE(SUM(chunk_count), 0) AS chunks,
                          MAX(indexed_at) AS last FROM documents WHERE collection = ?
                   GROUP BY status""",
                (name,),
            )
            by_status = {row["status"]: row for row in rows}
            failures = {
                row["error_code"]: row["n"]
                for row in manifest.execute(
                    """SELECT error_code, COUNT(*) AS n FROM documents
                       WHERE collection = ? AND error_code IS NOT NULL GROUP BY error_code""",
                    (name,),
                )
            }
            coll_meta: dict[str, Any] = {}
            if index.has_collection(name):
                coll_meta, chunks_in_index = index.describe(name)
            else:
                chunks_in_index = 0
            collections.append(
                {
                    "name": name,
                    "documents": sum(row["n"] for row in rows),
                    "indexed": by_status["indexed"]["n"] if "indexed" in by_status else 0,
                    "failed": by_status["failed"]["n"] if "failed" in by_status else 0,
                    "pending": by_status["pending"]["n"] if "pending" in by_status else 0,
                    "chunks": chunks_in_index,
                    "failures_by_reason": failures,
                    "embedder": coll_meta.get(COLL_EMBEDDER),
                    "dimension": coll_meta.get(COLL_DIMENSION),
                    "last_indexed_at": max((r["last"] or "" for r in rows), default=None) or None,
                }
            )
        readers = readers_status(settings.parse.ocr_languages, settings.parse.ocr is not False)
        return {
            "data_dir": str(settings.data_dir.resolve()),
            "collections": collections,
            "readers": readers,
        }
    finally:
        manifest.close()
