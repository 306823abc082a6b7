"""Many small files: embedded in batches, each still written (and recoverable) on its own."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.batching import BATCH_DOCS
from ingest.documents import ParsedDocument
from ingest.embed import Embedder
from ingest.errors import FileRejected
from ingest.index import META_DOC_HASH, META_DOCUMENT_ID, ChromaIndex
from ingest.lexical import LexicalIndexes, chunk_key
from ingest.manifest import Manifest
from ingest.parse import parse_file
from ingest.pipeline import IngestPipeline
from ingest.settings import IngestSettings, ParseSettings

FILES = 45  # more than one batch, and a partial last batch
EMPTY = "note010-empty.txt"  # sorted between note009.txt and note010.txt
TOPICS = (
    "volcano glacier harbour orchestra penguin bicycle satellite vineyard lighthouse cathedral"
    " tornado saxophone pyramid submarine meadow telescope dragonfly avalanche carnival"
    " labyrinth monsoon origami quarry reef sawmill tundra umbrella walrus xylophone yacht"
    " zeppelin bakery canyon dynamo emerald falcon geyser hammock igloo jaguar kayak lantern"
).split()


class RecordingEmbedder(Embedder):
    """The real encoder, recording the size of every encode call."""

    def __init__(self, shared: Embedder) -> None:
        super().__init__()
        self._model = shared.model
        self.info = shared.info
        self.threads = shared.threads
        self.calls: list[int] = []

    def encode(self, texts: list[str], *, threads: int | None = None) -> np.ndarray:
        self.calls.append(len(texts))
        return super().encode(texts, threads=threads)


class Crash(RuntimeError):
    pass


def write_notes(root: Path, version: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(FILES):
        topic = " ".join(TOPICS[(i * k + version) % len(TOPICS)] for k in (1, 3, 7))
        (root / f"note{i:03d}.txt").write_text(
            f"Note {i} version {version}\n\nThis note is about {topic}; item {i * 7 + version}.\n"
        )
    (root / EMPTY).write_text("   \n")  # fails in the middle of the first batch


class ParseFirst:
    """The real parser in this process, every file parsed before the first is handed over
    (a parser far ahead of the encoder, as with many small files)."""

    def parse_many(
        self, items: Iterable[tuple[Any, Path]], *, stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[Any, ParsedDocument | FileRejected]]:
        done: list[tuple[Any, ParsedDocument | FileRejected]] = []
        for key, path in items:
            try:
                done.append((key, parse_file(path, ParseSettings())))
            except FileRejected as exc:
                done.append((key, exc))
        yield from done

    def close(self) -> None:
        pass


@pytest.fixture()
def pipeline(data_dir: Path, embedder: Embedder) -> Iterator[IngestPipeline]:
    pipe = IngestPipeline(
        IngestSettings(),
        embedder=RecordingEmbedder(embedder),
        parser_factory=lambda _settings, _workers: ParseFirst(),
    )
    yield pipe
    pipe.close()


def chunk_docs(pipe: IngestPipeline) -> dict[str, tuple[str, str]]:
    got = pipe.index.collection("notes").get(include=["metadatas"])
    return {
        cid: (str(meta[META_DOCUMENT_ID]), str(meta[META_DOC_HASH]))
        for cid, meta in zip(got["ids"], got["metadatas"])
    }


def lexical_keys(pipe: IngestPipeline) -> set[int]:
    coll = pipe.index.collection("notes")
    return LexicalIndexes(pipe.settings.data_dir / "lexical").for_collection(coll).keys()


def test_small_files_are_embedded_in_batches(pipeline: IngestPipeline, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_notes(docs, 0)
    report = pipeline.run([docs], "notes")
    assert report.counts() == {"indexed": FILES, "unchanged": 0, "removed": 0, "failed": 1}
    assert [(f.path, f.reason) for f in report.files if f.status == "failed"] == [(EMPTY, "empty")]
    assert [f.path for f in report.files] == sorted(f.path for f in report.files)  # in order
    encoder = pipeline.embedder
    assert isinstance(encoder, RecordingEmbedder)
    assert sum(encoder.calls) == report.chunks_written
    assert len(encoder.calls) <= -(-FILES // BATCH_DOCS) + 2  # a handful, not one per file
    assert max(encoder.calls) >= BATCH_DOCS // 2
    chunks = chunk_docs(pipeline)
    records = {r.id: r for r in pipeline.manifest.documents("notes") if r.status == "indexed"}
    assert len(records) == FILES
    for doc_id, digest in chunks.values():  # every chunk belongs to its row's version
        assert records[doc_id].content_hash == digest
    per_doc: dict[str, int] = {}
    for doc_id, _ in chunks.values():
        per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
    assert per_doc == {doc_id: r.chunk_count for doc_id, r in records.items()}
    got = pipeline.index.collection("notes").get(include=["documents", "embeddings"])
    bodies = encoder.encode(list(got["documents"]))  # each vector went to its own chunk
    similarity = np.asarray(got["embeddings"], dtype=np.float32) @ bodies.T
    assert list(similarity.argmax(axis=1)) == list(range(len(bodies)))
    assert lexical_keys(pipeline) == {chunk_key(cid) for cid in chunks}


@pytest.mark.parametrize("where", ["before_upsert", "after_upsert", "before_indexed"])
def test_crash_inside_a_batch_keeps_every_finished_document(
    pipeline: IngestPipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """The second batch's writes die at ``where``: the first batch is indexed, the second's
    documents are ``pending`` and still findable, the rest untouched; a rerun converges."""
    docs = tmp_path / "docs"
    write_notes(docs, 0)
    pipeline.run([docs], "notes")
    old = {doc_id: digest for doc_id, digest in chunk_docs(pipeline).values()}
    write_notes(docs, 1)  # every file changes
    batches: list[set[str]] = []  # the documents of each upsert
    real_upsert, real_finish = ChromaIndex.upsert, Manifest.finish_indexed_many

    def upsert(self: ChromaIndex, collection: str, chunks: Any, vectors: Any) -> None:
        batches.append({str(c.metadata[META_DOCUMENT_ID]) for c in chunks})
        if len(batches) == 2 and where == "before_upsert":
            raise Crash("the process dies here")
        real_upsert(self, collection, chunks, vectors)
        if len(batches) == 2 and where == "after_upsert":
            raise Crash("the process dies here")

    def finish(self: Manifest, rows: Any) -> None:
        if len(batches) == 2 and where == "before_indexed":
            raise Crash("the process dies here")
        real_finish(self, rows)

    monkeypatch.setattr(ChromaIndex, "upsert", upsert)
    monkeypatch.setattr(Manifest, "finish_indexed_many", finish)
    with pytest.raises(Crash):
        pipeline.run([docs], "notes")
    monkeypatch.setattr(ChromaIndex, "upsert", real_upsert)
    monkeypatch.setattr(Manifest, "finish_indexed_many", real_finish)
    first, dying = batches
    assert len(first) > 1 and len(dying) > 1  # batches of several documents
    rows = {r.id: r for r in pipeline.manifest.documents("notes") if r.path != EMPTY}
    assert {d for d, r in rows.items() if r.status == "indexed" and r.content_hash not in
            old.values()} == first  # fmt: skip
    assert {d for d, r in rows.items() if r.status == "pending"} == dying
    untouched = set(rows) - first - dying
    assert all(rows[d].content_hash == old[d] and rows[d].status == "indexed" for d in untouched)
    versions: dict[str, set[str]] = {}
    for doc_id, digest in chunk_docs(pipeline).values():
        versions.setdefault(doc_id, set()).add(digest)
    assert set(versions) == set(rows)  # no document lost its chunks
    for doc_id, record in rows.items():
        if record.status == "indexed":
            assert versions[doc_id] == {record.content_hash}
        else:  # old chunks until the upsert, then both, then new ones once old are deleted
            expected = {
                "before_upsert": {old[doc_id]},
                "after_upsert": {old[doc_id], record.pending_hash},
                "before_indexed": {record.pending_hash},
            }
            assert versions[doc_id] == expected[where]
    report = pipeline.run([docs], "notes")  # the rerun converges
    assert report.counts()["indexed"] == FILES - len(first)
    records = {r.id: r for r in pipeline.manifest.documents("notes") if r.status == "indexed"}
    assert len(records) == FILES
    chunks = chunk_docs(pipeline)
    per_doc: dict[str, set[str]] = {}
    for doc_id, digest in chunks.values():
        per_doc.setdefault(doc_id, set()).add(digest)
    assert per_doc == {d: {r.content_hash} for d, r in records.items()}
    assert lexical_keys(pipeline) == {chunk_key(cid) for cid in chunks}
    batches.clear()
    monkeypatch.setattr(ChromaIndex, "upsert", upsert)
    again = pipeline.run([docs], "notes")  # an unchanged rerun writes nothing
    assert again.counts()["indexed"] == 0 and batches == []


def test_a_file_named_twice_in_one_run_is_indexed_once(
    pipeline: IngestPipeline, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write_notes(docs, 0)
    one = docs / "note003.txt"
    report = pipeline.run([one, docs, one], "notes")  # the same file three times
    assert report.counts() == {"indexed": FILES, "unchanged": 0, "removed": 0, "failed": 1}
    assert [f.path for f in report.files].count("note003.txt") == 1
    records = [r for r in pipeline.manifest.documents("notes") if r.path == "note003.txt"]
    assert len(records) == 1 and records[0].status == "indexed"
