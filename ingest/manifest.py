"""The manifest: one SQLite row per document, the ledger of what the index holds.

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

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.sqlite_wal import connect_wal

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id            TEXT PRIMARY KEY,
    collection    TEXT NOT NULL,
    root          TEXT NOT NULL,
    path          TEXT NOT NULL,
    size          INTEGER NOT NULL DEFAULT 0,
    mtime_ns      INTEGER NOT NULL DEFAULT 0,
    content_hash  TEXT,
    pending_hash  TEXT,
    file_type     TEXT,
    title         TEXT,
    status        TEXT NOT NULL,
    chunk_count   INTEGER NOT NULL DEFAULT 0,
    page_count    INTEGER,
    error_code    TEXT,
    error_message TEXT,
    embedder      TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    indexed_at    TEXT
);
CREATE INDEX IF NOT EXISTS documents_root ON documents (collection, root);
CREATE INDEX IF NOT EXISTS documents_status ON documents (status);
"""


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


class Manifest:
    """Thread-safe access to the manifest database (WAL, one connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._local = threading.local()
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_wal(self.path, busy_timeout_s=30.0)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed on success, rolled back on error."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Run one read statement."""
        return list(self._conn().execute(sql, params))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- reads ------------------------------------------------------------------------
    @staticmethod
    def _record(row: sqlite3.Row) -> DocumentRecord:
        return DocumentRecord(**{key: row[key] for key in row.keys()})

    def get(self, doc_id: str) -> DocumentRecord | None:
        rows = self.execute("SELECT * FROM documents WHERE id = ?", (doc_id,))
        return self._record(rows[0]) if rows else None

    def documents(
        self, collection: str | None = None, *, root: str | None = None, status: str | None = None
    ) -> list[DocumentRecord]:
        clauses, params = [], []
        for column, value in (("collection", collection), ("root", root), ("status", status)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.execute(
            f"SELECT * FROM documents {where} ORDER BY collection, path", tuple(params)
        )
        return [self._record(row) for row in rows]

    def collections(self) -> list[str]:
        return [r[0] for r in self.execute("SELECT DISTINCT collection FROM documents ORDER BY 1")]

    def count(self, collection: str, *, root: str | None = None, status: str | None = None) -> int:
        """Rows of ``collection`` (under ``root``, with ``status``, when given)."""
        sql = "SELECT COUNT(*) FROM documents WHERE collection = ?"
        params: list[Any] = [collection]
        for column, value in (("root", root), ("status", status)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        return int(self.execute(sql, tuple(params))[0][0])

    def members(self, collection: str, root: str, container: str) -> list[DocumentRecord]:
        """Rows of the members of the container at ``root``/``container`` (``a.zip/x.pdf``)."""
        prefix = container + "/"
        rows = self.execute(
            """SELECT * FROM documents WHERE collection = ? AND root = ?
               AND substr(path, 1, ?) = ? ORDER BY path""",
            (collection, root, len(prefix), prefix),
        )
        return [self._record(row) for row in rows]

    def failed(self, collections: list[str]) -> list[DocumentRecord]:
        """Failed rows of ``collections``, by collection, reason and path."""
        if not collections:
            return []
        marks = ",".join("?" * len(collections))
        rows = self.execute(
            f"SELECT * FROM documents WHERE status = 'failed' AND collection IN ({marks})"
            " ORDER BY collection, error_code, path",
            tuple(collections),
        )
        return [self._record(row) for row in rows]

    def counts(self) -> dict[str, DocumentCounts]:
        """Every collection's rows by status and failures by reason."""
        by_status: dict[str, dict[str, int]] = {}
        last: dict[str, str] = {}
        for row in self.execute(
            """SELECT collection, status, COUNT(*) AS n, MAX(indexed_at) AS last
               FROM documents GROUP BY collection, status"""
        ):
            by_status.setdefault(row["collection"], {})[row["status"]] = int(row["n"])
            if row["last"]:
                last[row["collection"]] = max(last.get(row["collection"], ""), row["last"])
        reasons: dict[str, dict[str, int]] = {}
        for row in self.execute(
            """SELECT collection, error_code, COUNT(*) AS n FROM documents
               WHERE error_code IS NOT NULL GROUP BY collection, error_code"""
        ):
            reasons.setdefault(row["collection"], {})[row["error_code"]] = int(row["n"])
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
        now = utc_now()
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO documents (id, collection, root, path, size, mtime_ns, pending_hash,
                       status, embedder, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET size = excluded.size,
                       mtime_ns = excluded.mtime_ns, pending_hash = excluded.pending_hash,
                       status = 'pending', embedder = excluded.embedder,
                       updated_at = excluded.updated_at""",
                (doc_id, collection, root, path, size, mtime_ns, pending_hash, embedder, now, now),
            )

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
        now = utc_now()
        with self.transaction() as conn:
            conn.execute(
                """UPDATE documents SET content_hash = ?, pending_hash = NULL, status = 'indexed',
                       chunk_count = ?, file_type = ?, title = ?, page_count = ?,
                       error_code = NULL, error_message = NULL, updated_at = ?, indexed_at = ?
                   WHERE id = ?""",
                (content_hash, chunk_count, file_type, title, page_count, now, now, doc_id),
            )

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
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO documents (id, collection, root, path, size, mtime_ns, content_hash,
                       file_type, status, chunk_count, error_code, error_message,
                       created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'failed', 0, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET size = excluded.size,
                       mtime_ns = excluded.mtime_ns, content_hash = excluded.content_hash,
                       pending_hash = NULL, file_type = excluded.file_type, status = 'failed',
                       chunk_count = 0, error_code = excluded.error_code,
                       error_message = excluded.error_message, updated_at = excluded.updated_at""",
                (
                    doc_id,
                    collection,
                    root,
                    path,
                    size,
                    mtime_ns,
                    content_hash,
                    file_type,
                    code,
                    message,
                    now,
                    now,
                ),
            )

    def note_error(self, doc_id: str, *, code: str, message: str) -> None:
        """A new version failed; the previously indexed one stays searchable."""
        with self.transaction() as conn:
            conn.execute(
                """UPDATE documents SET error_code = ?, error_message = ?, pending_hash = NULL,
                       updated_at = ? WHERE id = ?""",
                (code, message, utc_now(), doc_id),
            )

    def touch(self, doc_id: str, *, size: int, mtime_ns: int) -> None:
        """Same content, new stat (e.g. a ``touch``): remember it to skip hashing next time."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE documents SET size = ?, mtime_ns = ?, updated_at = ? WHERE id = ?",
                (size, mtime_ns, utc_now(), doc_id),
            )

    def delete(self, doc_id: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
