"""The manifest: one database row per document, the ledger of what the index holds.

Status values:
    pending   chunks for ``pending_hash`` may be partly written (a run is, or was, writing)
    indexed   every chunk of ``content_hash`` is in Chroma, and nothing else of this document
    failed    the file could not be indexed (``error_code`` / ``error_message``); no chunks
A row is written as ``pending`` *before* any chunk reaches Chroma, so a crash at any
moment leaves a row that the next run repairs (see ``pipeline.recover``).

This module holds every SQL statement on the ``documents`` table and returns typed
records (``DocumentRecord``, ``DocumentCounts``); the run ledger is ``ingest.runs``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Row, func, select

from ingest.db.schema import documents

if TYPE_CHECKING:
    from ingest.db import Database
    from ingest.settings import IngestSettings


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    id: str
    collection: str
    root: str
    path: str
    size: int
    mtime_ns: int
    content_hash: str | None
    pending_hash: str | None
    file_type: str | None
    title: str | None
    status: str
    chunk_count: int
    page_count: int | None
    error_code: str | None
    error_message: str | None
    embedder: str | None
    created_at: str
    updated_at: str
    indexed_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class DocumentCounts:
    """One collection's rows by status. ``documents``, wherever a count is shown (``inhouse
    index status``, ``GET /v1/collections``), means ``indexed``: what a question can find."""

    indexed: int = 0
    failed: int = 0
    pending: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    last_indexed_at: str | None = None

    @property
    def total(self) -> int:
        """Every row, whatever its status."""
        return self.indexed + self.failed + self.pending


@dataclass(frozen=True, slots=True)
class PendingDocument:
    """A row about to be marked ``pending`` (``Manifest.begin_documents``)."""

    doc_id: str
    collection: str
    root: str
    path: str
    size: int
    mtime_ns: int
    pending_hash: str
    embedder: str


@dataclass(frozen=True, slots=True)
class IndexedDocument:
    """A row about to be marked ``indexed`` (``Manifest.finish_indexed_many``)."""

    doc_id: str
    content_hash: str
    chunk_count: int
    file_type: str
    title: str | None
    page_count: int | None


class Manifest:
    """The documents table of the shared-state database (thread-safe: a connection pool)."""

    def __init__(self, db: Database, *, owned: bool = False) -> None:
        """``owned``: ``close()`` disposes of ``db`` too (see :meth:`open`)."""
        self.db = db
        self._owned = owned

    @classmethod
    def open(cls, settings: IngestSettings) -> Manifest:
        """The manifest of ``settings``' database, opened (schema checked) for this object."""
        from ingest.db import open_database

        return cls(open_database(settings), owned=True)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction, committed on success, rolled back on error."""
        with self.db.write() as conn:
            yield conn

    def close(self) -> None:
        if self._owned:
            self.db.dispose()

    # -- reads ------------------------------------------------------------------------
    @staticmethod
    def _record(row: Row[Any]) -> DocumentRecord:
        return DocumentRecord(**row._asdict())

    def _select(self, *where: ColumnElement[bool], order: bool = True) -> list[DocumentRecord]:
        query = select(documents).where(*where)
        if order:
            query = query.order_by(documents.c.collection, documents.c.path)
        with self.db.read() as conn:
            return [self._record(row) for row in conn.execute(query)]

    def get(self, doc_id: str) -> DocumentRecord | None:
        rows = self._select(documents.c.id == doc_id, order=False)
        return rows[0] if rows else None

    def documents(
        self, collection: str | None = None, *, root: str | None = None, status: str | None = None
    ) -> list[DocumentRecord]:
        return self._select(*_filters(collection=collection, root=root, status=status))

    def collections(self) -> list[str]:
        query = select(documents.c.collection).distinct().order_by(documents.c.collection)
        with self.db.read() as conn:
            return list(conn.execute(query).scalars())

    def count(self, collection: str, *, root: str | None = None, status: str | None = None) -> int:
        """Rows of ``collection`` (under ``root``, with ``status``, when given)."""
        query = select(func.count()).where(
            *_filters(collection=collection, root=root, status=status)
        )
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def members(self, collection: str, root: str, container: str) -> list[DocumentRecord]:
        """Rows of the members of the container at ``root``/``container`` (``a.zip/x.pdf``)."""
        prefix = container + "/"
        return self._select(
            documents.c.collection == collection,
            documents.c.root == root,
            func.substr(documents.c.path, 1, len(prefix)) == prefix,
        )

    def failed(self, collections: list[str]) -> list[DocumentRecord]:
        """Failed rows of ``collections``, by collection, reason and path."""
        if not collections:
            return []
        query = (
            select(documents)
            .where(documents.c.status == "failed", documents.c.collection.in_(collections))
            .order_by(documents.c.collection, documents.c.error_code, documents.c.path)
        )
        with self.db.read() as conn:
            return [self._record(row) for row in conn.execute(query)]

    def counts(self) -> dict[str, DocumentCounts]:
        """Every collection's rows by status and failures by reason."""
        d = documents.c
        by_status: dict[str, dict[str, int]] = {}
        last: dict[str, str] = {}
        reasons: dict[str, dict[str, int]] = {}
        with self.db.read() as conn:
            for coll, status, n, latest in conn.execute(
                select(d.collection, d.status, func.count(), func.max(d.indexed_at)).group_by(
                    d.collection, d.status
                )
            ):
                by_status.setdefault(coll, {})[status] = int(n)
                if latest:
                    last[coll] = max(last.get(coll, ""), latest)
            for coll, code, n in conn.execute(
                select(d.collection, d.error_code, func.count())
                .where(d.error_code.is_not(None))
                .group_by(d.collection, d.error_code)
            ):
                reasons.setdefault(coll, {})[code] = int(n)
        return {
            name: DocumentCounts(
                indexed=statuses.get("indexed", 0),
                failed=statuses.get("failed", 0),
                pending=statuses.get("pending", 0),
                failures_by_reason=reasons.get(name, {}),
                last_indexed_at=last.get(name),
            )
            for name, statuses in by_status.items()
        }

    # -- writes -----------------------------------------------------------------------
    def begin_document(
        self,
        *,
        doc_id: str,
        collection: str,
        root: str,
        path: str,
        size: int,
        mtime_ns: int,
        pending_hash: str,
        embedder: str,
    ) -> None:
        """Record intent to write chunks for ``pending_hash`` (before touching Chroma)."""
        self.begin_documents(
            [
                PendingDocument(
                    doc_id, collection, root, path, size, mtime_ns, pending_hash, embedder
                )
            ]
        )

    def begin_documents(self, rows: Sequence[PendingDocument]) -> None:
        """``begin_document`` for several documents, in one transaction."""
        now = utc_now()
        with self.db.write() as conn:
            for row in rows:
                stmt = self.db.insert(documents).values(
                    id=row.doc_id, collection=row.collection, root=row.root, path=row.path,
                    size=row.size, mtime_ns=row.mtime_ns, pending_hash=row.pending_hash,
                    status="pending", embedder=row.embedder, created_at=now, updated_at=now,
                )  # fmt: skip
                new = stmt.excluded
                stmt = stmt.on_conflict_do_update(
                    index_elements=["id"],
                    set_={
                        "size": new.size, "mtime_ns": new.mtime_ns,
                        "pending_hash": new.pending_hash, "status": "pending",
                        "embedder": new.embedder, "updated_at": new.updated_at,
                    },
                )  # fmt: skip
                conn.execute(stmt)

    def _update(self, doc_id: str, **values: Any) -> None:
        with self.db.write() as conn:
            conn.execute(documents.update().where(documents.c.id == doc_id).values(**values))

    def finish_indexed(
        self,
        doc_id: str,
        *,
        content_hash: str,
        chunk_count: int,
        file_type: str,
        title: str | None,
        page_count: int | None,
    ) -> None:
        """All chunks of ``content_hash`` are stored (old ones may still need removing)."""
        self.finish_indexed_many(
            [IndexedDocument(doc_id, content_hash, chunk_count, file_type, title, page_count)]
        )

    def finish_indexed_many(self, rows: Sequence[IndexedDocument]) -> None:
        """``finish_indexed`` for several documents, in one transaction."""
        now = utc_now()
        with self.db.write() as conn:
            for row in rows:
                conn.execute(
                    documents.update().where(documents.c.id == row.doc_id).values(
                        content_hash=row.content_hash, pending_hash=None, status="indexed",
                        chunk_count=row.chunk_count, file_type=row.file_type, title=row.title,
                        page_count=row.page_count, error_code=None, error_message=None,
                        updated_at=now, indexed_at=now,
                    )
                )  # fmt: skip

    def record_failure(
        self,
        *,
        doc_id: str,
        collection: str,
        root: str,
        path: str,
        size: int,
        mtime_ns: int,
        content_hash: str | None,
        code: str,
        message: str,
        file_type: str | None = None,
    ) -> None:
        """The file cannot be indexed; it holds no chunks (the caller removed them)."""
        now = utc_now()
        stmt = self.db.insert(documents).values(
            id=doc_id, collection=collection, root=root, path=path, size=size,
            mtime_ns=mtime_ns, content_hash=content_hash, file_type=file_type, status="failed",
            chunk_count=0, error_code=code, error_message=message, created_at=now,
            updated_at=now,
        )  # fmt: skip
        new = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "size": new.size, "mtime_ns": new.mtime_ns, "content_hash": new.content_hash,
                "pending_hash": None, "file_type": new.file_type, "status": "failed",
                "chunk_count": 0, "error_code": new.error_code,
                "error_message": new.error_message, "updated_at": new.updated_at,
            },
        )  # fmt: skip
        with self.db.write() as conn:
            conn.execute(stmt)

    def note_error(self, doc_id: str, *, code: str, message: str) -> None:
        """A new version failed; the previously indexed one stays searchable."""
        self._update(
            doc_id, error_code=code, error_message=message, pending_hash=None, updated_at=utc_now()
        )

    def touch(self, doc_id: str, *, size: int, mtime_ns: int) -> None:
        """Same content, new stat (e.g. a ``touch``): remember it to skip hashing next time."""
        self._update(doc_id, size=size, mtime_ns=mtime_ns, updated_at=utc_now())

    def set_embedder(self, collection: str, embedder: str) -> None:
        """Record that ``collection``'s indexed rows are now embedded by ``embedder``."""
        d = documents.c
        with self.db.write() as conn:
            conn.execute(
                documents.update()
                .where(d.collection == collection, d.status == "indexed")
                .where((d.embedder != embedder) | d.embedder.is_(None))
                .values(embedder=embedder)
            )

    def delete(self, doc_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(documents.delete().where(documents.c.id == doc_id))


def _filters(**values: str | None) -> list[ColumnElement[bool]]:
    return [documents.c[name] == value for name, value in values.items() if value is not None]
