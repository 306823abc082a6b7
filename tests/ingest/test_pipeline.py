"""Incremental ingest: first run, unchanged rerun, edits, deletions, failures, mismatch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ingest.embed import Embedder, EmbedderInfo
from ingest.errors import EmbedderMismatch
from ingest.index import (
    META_COLLECTION,
    META_DOC_HASH,
    META_DOCUMENT_ID,
    META_FILE_TYPE,
    META_SECTION,
    META_SOURCE,
    ChromaIndex,
    make_chroma_client,
)
from ingest.pipeline import IngestPipeline, ParserFactory
from ingest.settings import IngestSettings


class CountingEmbedder(Embedder):
    """The real encoder, counting how many texts it was asked to embed."""

    def __init__(self, shared: Embedder) -> None:
        super().__init__()
        self._model = shared.model
        self.info = shared.info
        self.threads = shared.threads
        self.encoded = 0

    def encode(self, texts: list[str], *, threads: int | None = None) -> np.ndarray:
        self.encoded += len(texts)
        return super().encode(texts, threads=threads)


@pytest.fixture()
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "policies").mkdir(parents=True)
    (root / "policies" / "vacation.md").write_text(
        "# Vacation policy\n\nEmployees receive 27 days of paid vacation per year.\n\n"
        "## Carry-over\n\nUp to five unused days carry over to the next year.\n"
    )
    (root / "policies" / "expenses.txt").write_text(
        "Expense policy. Meals while travelling are reimbursed up to 45 euros per day.\n"
    )
    (root / "notes.md").write_text("# Parking\n\nThe parking garage opens at 6:30.\n")
    (root / ".hidden.md").write_text("# Secret\n\nnever indexed\n")
    (root / "~$draft.docx").write_bytes(b"lock file")
    return root


@pytest.fixture()
def pipeline(
    data_dir: Path, embedder: Embedder, shared_parsers: ParserFactory
) -> Iterator[IngestPipeline]:
    pipe = IngestPipeline(
        IngestSettings(), embedder=CountingEmbedder(embedder), parser_factory=shared_parsers
    )
    yield pipe
    pipe.close()


def chunks_of(pipe: IngestPipeline, collection: str) -> dict[str, dict[str, object]]:
    coll = pipe.index.collection(collection)
    got = coll.get(include=["metadatas"])
    return {cid: meta for cid, meta in zip(got["ids"], got["metadatas"])}


def test_first_run_indexes_with_metadata(pipeline: IngestPipeline, docs: Path) -> None:
    report = pipeline.run([docs], "hr")
    assert report.counts() == {"indexed": 3, "unchanged": 0, "removed": 0, "failed": 0}
    chunks = chunks_of(pipeline, "hr")
    assert len(chunks) == report.chunks_written > 0
    sources = {m[META_SOURCE] for m in chunks.values()}
    assert sources == {"policies/vacation.md", "policies/expenses.txt", "notes.md"}
    for meta in chunks.values():
        assert meta[META_COLLECTION] == "hr"
        record = pipeline.manifest.get(str(meta[META_DOCUMENT_ID]))
        assert record is not None and record.status == "indexed"
        assert meta[META_DOC_HASH] == record.content_hash
    vacation = [m for m in chunks.values() if m[META_SOURCE] == "policies/vacation.md"]
    assert {m[META_FILE_TYPE] for m in vacation} == {"md"}
    assert any(m.get(META_SECTION) == "Vacation policy" for m in vacation)
    manifest_chunks = sum(r.chunk_count for r in pipeline.manifest.documents("hr"))
    assert manifest_chunks == len(chunks)


def test_unchanged_rerun_embeds_nothing(pipeline: IngestPipeline, docs: Path) -> None:
    pipeline.run([docs], "hr")
    before = chunks_of(pipeline, "hr")
    encoder = pipeline.embedder
    assert isinstance(encoder, CountingEmbedder)
    encoder.encoded = 0
    report = pipeline.run([docs], "hr")
    assert report.counts()["unchanged"] == 3
    assert encoder.encoded == 0
    # a touch changes mtime but not content: still unchanged, still nothing embedded
    target = docs / "notes.md"
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    report = pipeline.run([docs], "hr")
    assert report.counts()["unchanged"] == 3 and encoder.encoded == 0
    assert chunks_of(pipeline, "hr") == before


def test_edit_replaces_chunks_and_deletion_removes(pipeline: IngestPipeline, docs: Path) -> None:
    pipeline.run([docs], "hr")
    (docs / "notes.md").write_text("# Parking\n\nThe parking garage now opens at 7:00 sharp.\n")
    report = pipeline.run([docs], "hr")
    assert report.counts() == {"indexed": 1, "unchanged": 2, "removed": 0, "failed": 0}
    texts = pipeline.index.collection("hr").get(include=["documents"])["documents"]
    assert any("7:00 sharp" in t for t in texts)
    assert not any("6:30" in t for t in texts)
    (docs / "policies" / "expenses.txt").unlink()
    report = pipeline.run([docs], "hr")
    assert report.counts()["removed"] == 1
    chunks = chunks_of(pipeline, "hr")
    assert "policies/expenses.txt" not in {m[META_SOURCE] for m in chunks.values()}
    assert len(pipeline.manifest.documents("hr")) == 2


def test_failed_new_version_keeps_previous(pipeline: IngestPipeline, docs: Path) -> None:
    pipeline.run([docs], "hr")
    (docs / "notes.md").write_text("   \n\t\n")  # whitespace only -> empty
    report = pipeline.run([docs], "hr")
    failed = [r for r in report.files if r.status == "failed"]
    assert [(r.path, r.reason) for r in failed] == [("notes.md", "empty")]
    assert "kept" in (failed[0].message or "")
    texts = pipeline.index.collection("hr").get(include=["documents"])["documents"]
    assert any("6:30" in t for t in texts)


def test_new_broken_file_reported_and_rest_indexed(pipeline: IngestPipeline, docs: Path) -> None:
    (docs / "empty.txt").write_text("")
    report = pipeline.run([docs], "hr")
    statuses = {r.path: (r.status, r.reason) for r in report.files}
    assert statuses["empty.txt"] == ("failed", "empty")
    assert report.counts()["indexed"] == 3
    again = pipeline.run([docs], "hr")
    assert {r.path: r.status for r in again.files}["empty.txt"] == "failed"


def test_embedder_mismatch_is_an_error(data_dir: Path, docs: Path, embedder: Embedder) -> None:
    settings = IngestSettings()
    other = ChromaIndex(
        make_chroma_client(settings), EmbedderInfo(name="other-model", dimension=768)
    )
    other.collection("hr", create=True)
    pipe = IngestPipeline(settings, embedder=embedder)
    with pytest.raises(EmbedderMismatch, match="other-model"):
        pipe.run([docs], "hr")
    pipe.close()


def test_display_title_prefers_a_real_title() -> None:
    from ingest.jobs import display_title

    assert display_title("Annual Report 2023", "ar.pdf") == "Annual Report 2023"
    assert display_title("0000320193-23-000077", "2023 Q3 AAPL.pdf") == "2023 Q3 AAPL.pdf"
    assert display_title("Microsoft Word - draft.docx", "plan.docx") == "plan.docx"
    assert display_title(None, "notes.md") == "notes.md"
