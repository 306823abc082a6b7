"""Members as documents through the real pipeline: search, reruns, removal, crash, download."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.documents import ParsedDocument
from ingest.embed import Embedder
from ingest.errors import FileRejected
from ingest.index import META_SOURCE, document_id
from ingest.parse import parse_file
from ingest.pipeline import IngestPipeline
from ingest.settings import IngestSettings, ParseSettings
from ingest.writer import DocumentWriter
from service.caller import SCOPE_QUERY, Caller
from service.errors import NotFound
from service.originals import Originals
from tests.ingest import reader_fixtures as rf
from tests.ingest.msg_writer import write_msg
from tests.ingest.test_pipeline import CountingEmbedder

COLLECTION = "papers"


def _zip(with_a: bool = True) -> bytes:
    inner = rf.zip_bytes([("b.md", b"# Nested\n\nThe zebranested figures are final.")])
    members = [("inner.zip", inner), ("../evil.txt", b"escape")]
    if with_a:
        members.insert(0, ("dir/a.txt", b"The zebrazip budget was approved in March."))
    return rf.zip_bytes(members)


@pytest.fixture()
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "bundle.zip").write_bytes(_zip())
    (root / "mail.eml").write_bytes(
        rf.eml_with_attachments(
            "See the attached minutes.",
            [("minutes.txt", "text/plain", b"The zebraminutes record the vote on the budget.")],
        )
    )
    (root / "outlook.msg").write_bytes(
        write_msg(
            subject="Papers",
            body="The report is attached.",
            sender_name="Alice",
            sender_email="alice@example.com",
            to_name="Bob",
            to_email="bob@example.com",
            attachments=[("notes.txt", b"The zebramsgnotes list the open questions.")],
        )
    )
    return root


class InProcessParser:
    """The real parser, run in this process (isolation is tested in test_isolation)."""

    def __init__(self, settings: ParseSettings, _workers: int) -> None:
        self._settings = settings

    def parse_many(
        self, items: Iterable[tuple[Any, Path]], *, stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[Any, ParsedDocument | FileRejected]]:
        for key, path in items:
            try:
                yield key, parse_file(path, self._settings)
            except FileRejected as exc:
                yield key, exc

    def close(self) -> None:
        pass


@pytest.fixture()
def pipeline(data_dir: Path, embedder: Embedder) -> Iterator[IngestPipeline]:
    pipe = IngestPipeline(
        IngestSettings(), embedder=CountingEmbedder(embedder), parser_factory=InProcessParser
    )
    yield pipe
    pipe.close()


def _search(pipe: IngestPipeline, query: str) -> list[dict[str, Any]]:
    vector = pipe.embedder.encode([query])
    found = pipe.index.collection(COLLECTION).query(query_embeddings=vector, n_results=3)
    return list(found["metadatas"][0])


def _statuses(pipe: IngestPipeline) -> dict[str, tuple[str, str | None]]:
    return {r.path: (r.status, r.error_code) for r in pipe.manifest.documents(COLLECTION)}


def test_members_are_documents_searchable_and_incremental(
    pipeline: IngestPipeline, docs: Path
) -> None:
    report = pipeline.run([docs], COLLECTION)
    assert _statuses(pipeline) == {
        "bundle.zip": ("indexed", None),
        "bundle.zip/dir/a.txt": ("indexed", None),
        "bundle.zip/inner.zip": ("indexed", None),
        "bundle.zip/inner.zip/b.md": ("indexed", None),
        "bundle.zip/evil.txt": ("failed", "unsupported_type"),
        "mail.eml": ("indexed", None),
        "mail.eml/minutes.txt": ("indexed", None),
        "outlook.msg": ("indexed", None),
        "outlook.msg/notes.txt": ("indexed", None),
    }
    assert report.counts()["indexed"] == 8 and report.counts()["failed"] == 1
    for query, source in (
        ("The zebrazip budget was approved in March.", "bundle.zip/dir/a.txt"),
        ("The zebranested figures are final.", "bundle.zip/inner.zip/b.md"),
        ("The zebraminutes record the vote on the budget.", "mail.eml/minutes.txt"),
        ("The zebramsgnotes list the open questions.", "outlook.msg/notes.txt"),
    ):
        assert _search(pipeline, query)[0][META_SOURCE] == source

    embedder: CountingEmbedder = pipeline.embedder  # type: ignore[assignment]
    embedder.encoded = 0
    again = pipeline.run([docs], COLLECTION)
    assert again.counts() == {"indexed": 0, "unchanged": 8, "removed": 0, "failed": 1}
    assert embedder.encoded == 0

    (docs / "bundle.zip").write_bytes(_zip(with_a=False))
    changed = pipeline.run([docs], COLLECTION)
    by_path = {r.path: r.status for r in changed.files}
    assert by_path["bundle.zip/dir/a.txt"] == "removed"
    assert by_path["bundle.zip/inner.zip/b.md"] == "unchanged"  # same bytes: not embedded again
    assert by_path["bundle.zip"] == "indexed"
    assert "bundle.zip/dir/a.txt" not in _statuses(pipeline)
    assert all(m[META_SOURCE] != "bundle.zip/dir/a.txt" for m in _search(pipeline, "zebrazip"))

    (docs / "mail.eml").unlink()
    gone = pipeline.run([docs], COLLECTION)
    assert {r.path for r in gone.files if r.status == "removed"} == {
        "mail.eml", "mail.eml/minutes.txt"
    }  # fmt: skip


def test_a_crash_mid_container_converges(
    pipeline: IngestPipeline, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    container_id = document_id(COLLECTION, str(docs.resolve()), "bundle.zip")
    store = DocumentWriter.store

    def crash_on_container(
        self: DocumentWriter, collection: str, job: Any, *a: Any, **k: Any
    ) -> Any:
        if job.doc_id == container_id:
            raise KeyboardInterrupt("killed after the members, before the container")
        return store(self, collection, job, *a, **k)

    monkeypatch.setattr(DocumentWriter, "store", crash_on_container)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run([docs / "bundle.zip"], COLLECTION)
    assert pipeline.manifest.get(container_id).status == "pending"  # type: ignore[union-attr]
    monkeypatch.setattr(DocumentWriter, "store", store)

    rerun = pipeline.run([docs], COLLECTION)
    by_path = {r.path: r.status for r in rerun.files}
    assert by_path["bundle.zip"] == "indexed"
    assert by_path["bundle.zip/dir/a.txt"] == "unchanged"  # done before the crash
    statuses = _statuses(pipeline)
    assert all(status != "pending" for status, _ in statuses.values())
    stored = pipeline.index.collection(COLLECTION).get(include=["metadatas"])
    per_source: dict[str, int] = {}
    for meta in stored["metadatas"]:
        per_source[str(meta[META_SOURCE])] = per_source.get(str(meta[META_SOURCE]), 0) + 1
    expected = {
        r.path: r.chunk_count for r in pipeline.manifest.documents(COLLECTION) if r.chunk_count
    }
    assert per_source == expected


def test_a_cited_member_opens_from_its_container(pipeline: IngestPipeline, docs: Path) -> None:
    pipeline.run([docs], COLLECTION)
    root = str(docs.resolve())
    originals = Originals(pipeline.manifest)
    reader = Caller("k1", "reader", frozenset({SCOPE_QUERY}), frozenset({COLLECTION}))
    outsider = Caller("k2", "outsider", frozenset({SCOPE_QUERY}), frozenset({"other"}))

    nested = originals.find(reader, document_id(COLLECTION, root, "bundle.zip/inner.zip/b.md"))
    assert nested.data == b"# Nested\n\nThe zebranested figures are final."
    assert nested.filename == "b.md" and nested.media_type == "text/markdown"
    attachment = originals.find(reader, document_id(COLLECTION, root, "mail.eml/minutes.txt"))
    assert attachment.data == b"The zebraminutes record the vote on the budget."
    with pytest.raises(NotFound):
        originals.find(outsider, document_id(COLLECTION, root, "mail.eml/minutes.txt"))
    with pytest.raises(NotFound):  # refused at ingest, never served
        originals.find(reader, document_id(COLLECTION, root, "bundle.zip/evil.txt"))
    plain = originals.find(reader, document_id(COLLECTION, root, "mail.eml"))
    assert plain.data is None and plain.path == docs.resolve() / "mail.eml"
