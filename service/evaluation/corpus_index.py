"""Index a BEIR corpus through the real ingest pipeline, once per corpus version.

Each corpus record becomes a Markdown file (``# title`` then the text) in a cache folder
under the data dir, ``<data dir>/eval/<collection>/docs/<id>.md``, and the folder is
ingested by ``IngestPipeline`` exactly as ``inhouse ingest`` would: the same parser
(``ingest.parse.parse_file``), chunker, encoder, index writer and manifest. Only the
process isolation of parsing is skipped (these files are our own, small and trusted): a
process hand-off per file would cost more than parsing it.

A fingerprint (corpus file hash, encoder, chunk settings) is stored beside the folder
after a complete run; an unchanged corpus with its collection intact is not touched at all.
Another encoder or chunk size, or a collection that no longer holds what was built (its
documents deleted meanwhile), rebuilds the collection from scratch; a changed corpus is
ingested incrementally (changed files re-indexed, removed ones deleted). The encoder
compared with the configured one is the one the collection records, when it exists: a
collection switched by ``inhouse reindex --reembed`` to the configured encoder is reused,
one switched away from it is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.documents import ParsedDocument
from ingest.errors import FileRejected
from ingest.index import recorded_embedder
from ingest.pipeline import IngestPipeline, ProgressListener
from ingest.settings import IngestSettings, ParseSettings
from service.evaluation.datasets import BeirSet, CorpusDoc

FORMAT_VERSION = 1  # bump when the way records become files changes
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,80}")


def doc_file_name(doc_id: str) -> str:
    """The cache file name of a corpus record: its id, or a hash of an id unsafe as a name."""
    if _SAFE_ID.fullmatch(doc_id):
        return f"{doc_id}.md"
    return f"id-{hashlib.sha256(doc_id.encode()).hexdigest()[:24]}.md"


def render(doc: CorpusDoc) -> str:
    """A corpus record as a Markdown document: the title as its heading, then the text."""
    title = " ".join(doc.title.split())
    return f"# {title}\n\n{doc.text}\n" if title else f"{doc.text}\n"


class InProcessParser:
    """``ingest.parse.parse_file`` in this process (``ingest.pipeline.ParserLike``)."""

    def __init__(self, settings: ParseSettings, _workers: int = 1) -> None:
        self._settings = settings

    def parse_many(
        self, items: Iterable[tuple[Any, Path]], *, stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[Any, ParsedDocument | FileRejected]]:
        from ingest.parse import parse_file

        for key, path in items:
            if stop is not None and stop():
                return
            try:
                yield key, parse_file(path, self._settings)
            except FileRejected as exc:
                yield key, exc

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class IndexState:
    """What ``ensure_indexed`` did."""

    collection: str
    reused: bool  # nothing was touched
    documents: int  # corpus records with text
    indexed: int  # files (re-)indexed in this run
    failed: int
    chunks: int  # chunks in the collection
    elapsed_s: float


class CorpusIndexer:
    """Keeps one collection in line with one BEIR corpus."""

    def __init__(self, settings: IngestSettings, pipeline: IngestPipeline | None = None) -> None:
        self.settings = settings
        self._pipeline = pipeline

    @property
    def pipeline(self) -> IngestPipeline:
        if self._pipeline is None:
            self._pipeline = IngestPipeline(self.settings, parser_factory=InProcessParser)
        return self._pipeline

    def folder(self, collection: str) -> Path:
        return self.settings.data_dir / "eval" / collection

    def fingerprint(self, data: BeirSet) -> dict[str, Any]:
        model = self.settings.embed.model_path
        return {
            "format": FORMAT_VERSION,
            "corpus_sha256": data.corpus_fingerprint(),
            "embedder": str(model.resolve()) if model else "default",
            "chunk": self.settings.chunk.model_dump(),
        }

    def ensure_indexed(
        self,
        data: BeirSet,
        collection: str,
        *,
        rebuild: bool = False,
        listener: ProgressListener | None = None,
    ) -> IndexState:
        """Index ``data.corpus`` into ``collection`` unless that is already done."""
        folder = self.folder(collection)
        stamp_path = folder / "fingerprint.json"
        wanted = self.fingerprint(data)
        stored = _read_json(stamp_path) or {}
        stored["embedder"] = self._built_with(collection) or stored.get("embedder")
        documents = sum(1 for doc in data.corpus if doc.text or doc.title)
        same_settings = all(stored.get(k) == v for k, v in wanted.items() if k != "corpus_sha256")
        if not rebuild and same_settings and stored.get("corpus_sha256") == wanted["corpus_sha256"]:
            indexed, chunks = self._indexed_count(collection), self._chunks(collection)
            if stored.get("indexed", indexed) == indexed and chunks > 0:
                return IndexState(collection, True, documents, 0, 0, chunks, 0.0)
            rebuild = True  # the index no longer holds what was built: start over
        if rebuild or (stored and not same_settings):
            self.drop(collection)
        stamp_path.unlink(missing_ok=True)
        docs_dir = folder / "docs"
        self._write_files(docs_dir, data.corpus)
        report = self.pipeline.run([docs_dir], collection, workers=1, listener=listener)
        if not report.interrupted:
            stamp = {**wanted, "documents": documents, "indexed": self._indexed_count(collection)}
            stamp_path.write_text(json.dumps(stamp, indent=2))
        counts = report.to_dict()["counts"]
        return IndexState(
            collection=collection,
            reused=False,
            documents=documents,
            indexed=counts["indexed"],
            failed=counts["failed"],
            chunks=self._chunks(collection),
            elapsed_s=report.elapsed_s,
        )

    def drop(self, collection: str) -> None:
        """Drop the collection's chunks (the whole Chroma collection), then its documents."""
        self.pipeline.index.drop_collection(collection)
        self.pipeline.remove_collection_documents(collection)

    def source_ids(self, data: BeirSet) -> dict[str, str]:
        """Chunk ``source`` metadata (file name) -> corpus id."""
        return {doc_file_name(doc.id): doc.id for doc in data.corpus}

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()

    @staticmethod
    def _write_files(docs_dir: Path, corpus: list[CorpusDoc]) -> None:
        """Write each record as a file; unchanged files keep their bytes and mtime."""
        docs_dir.mkdir(parents=True, exist_ok=True)
        wanted: set[str] = set()
        for doc in corpus:
            if not (doc.text or doc.title):
                continue
            name = doc_file_name(doc.id)
            wanted.add(name)
            path = docs_dir / name
            data = render(doc).encode("utf-8")
            try:
                if path.read_bytes() == data:
                    continue
            except FileNotFoundError:
                pass
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        for stale in docs_dir.glob("*.md"):
            if stale.name not in wanted:
                stale.unlink()

    def _built_with(self, collection: str) -> str | None:
        """The encoder ``collection`` records, as the fingerprint names encoders (a resolved
        folder, or "default"); None when there is no such collection."""
        index = self.pipeline.index
        if not index.has_collection(collection):
            return None
        path = recorded_embedder(dict(index.handle(collection).metadata or {})).path
        return str(Path(path).resolve()) if path else "default"

    def _indexed_count(self, collection: str) -> int:
        return self.pipeline.manifest.count(collection, status="indexed")

    def _chunks(self, collection: str) -> int:
        index = self.pipeline.index
        return index.count(collection) if index.has_collection(collection) else 0


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
