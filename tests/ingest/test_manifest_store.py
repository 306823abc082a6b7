"""The manifest's SQL on both backends (SQLite and PostgreSQL): the document life cycle,
upserts, counts by status and reason, container members, failures, embedder changes."""

from __future__ import annotations

import pytest

from ingest.db import Database
from ingest.manifest import Manifest

BIG = 1_764_000_000_123_456_789  # mtime in nanoseconds: needs 64 bits


@pytest.fixture()
def manifest(database: Database) -> Manifest:
    return Manifest(database)


def begin(manifest: Manifest, doc_id: str, path: str, collection: str = "main") -> None:
    manifest.begin_document(
        doc_id=doc_id, collection=collection, root="/docs", path=path, size=6_000_000_000,
        mtime_ns=BIG, pending_hash=f"p-{doc_id}", embedder="minilm",
    )  # fmt: skip


def test_document_life_cycle(manifest: Manifest) -> None:
    begin(manifest, "d1", "a.pdf")
    row = manifest.get("d1")
    assert row is not None and (row.status, row.pending_hash, row.mtime_ns) == (
        "pending",
        "p-d1",
        BIG,
    )
    manifest.finish_indexed(
        "d1", content_hash="h1", chunk_count=7, file_type="pdf", title="A", page_count=2
    )
    row = manifest.get("d1")
    assert row is not None and (row.status, row.content_hash, row.pending_hash) == (
        "indexed",
        "h1",
        None,
    )
    assert row.indexed_at is not None and row.size == 6_000_000_000
    begin(manifest, "d1", "a.pdf")  # a new version: the upsert keeps created_at and content
    again = manifest.get("d1")
    assert again is not None and again.status == "pending" and again.content_hash == "h1"
    assert again.created_at == row.created_at
    manifest.note_error("d1", code="timeout", message="slow")
    noted = manifest.get("d1")
    assert noted is not None and (noted.error_code, noted.pending_hash) == ("timeout", None)
    manifest.touch("d1", size=1, mtime_ns=2)
    touched = manifest.get("d1")
    assert touched is not None and (touched.size, touched.mtime_ns) == (1, 2)
    manifest.delete("d1")
    assert manifest.get("d1") is None


def test_failures_counts_members_and_embedder(manifest: Manifest) -> None:
    begin(manifest, "z", "box.zip/x.pdf")
    begin(manifest, "y", "box.zip/y.pdf")
    begin(manifest, "o", "box.zipper.pdf")  # not a member: the prefix ends at the slash
    for doc_id in ("z", "y", "o"):
        manifest.finish_indexed(
            doc_id, content_hash="h", chunk_count=1, file_type="pdf", title=None, page_count=1
        )
    for n, code in enumerate(("encrypted", "encrypted", "corrupt")):
        manifest.record_failure(
            doc_id=f"f{n}", collection="hr", root="/docs", path=f"f{n}.pdf", size=1,
            mtime_ns=1, content_hash=None, code=code, message="m",
        )  # fmt: skip
    begin(manifest, "f0", "f0.pdf", collection="hr")  # retried: pending again
    assert [r.id for r in manifest.members("main", "/docs", "box.zip")] == ["z", "y"]
    assert [r.id for r in manifest.failed(["hr", "main"])] == ["f2", "f1"]
    assert manifest.failed([]) == []
    counts = manifest.counts()
    assert (counts["main"].indexed, counts["main"].failed, counts["main"].pending) == (3, 0, 0)
    assert (counts["hr"].failed, counts["hr"].pending) == (2, 1)
    assert counts["hr"].failures_by_reason == {"encrypted": 2, "corrupt": 1}
    assert counts["main"].last_indexed_at is not None and counts["hr"].last_indexed_at is None
    assert manifest.collections() == ["hr", "main"]
    assert manifest.count("main") == 3 and manifest.count("hr", status="failed") == 2
    assert manifest.count("main", root="/elsewhere") == 0
    assert [r.path for r in manifest.documents("main", status="indexed")] == [
        "box.zip/x.pdf",
        "box.zip/y.pdf",
        "box.zipper.pdf",
    ]
    manifest.set_embedder("main", "other-model")
    assert {r.embedder for r in manifest.documents("main")} == {"other-model"}
    assert {r.embedder for r in manifest.documents("hr", status="pending")} == {"minilm"}
