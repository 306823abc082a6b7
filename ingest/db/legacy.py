"""Import the SQLite files of versions before the shared database, once.

Those versions kept the manifest and run history in ``<data dir>/manifest.sqlite3`` and auth
state in ``<data dir>/auth/keys.sqlite3`` and ``sessions.sqlite3``. ``inhouse db upgrade``
copies their rows into the database (SQLite or PostgreSQL) in one transaction, then renames
each file to ``*.imported`` (kept, self-contained: its WAL is checkpointed first). A crash
between the two steps is harmless: rows already present are skipped on the next attempt.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.db import schema

if TYPE_CHECKING:
    from ingest.db.engine import Database

LEGACY_TABLES: dict[str, tuple[str, ...]] = {
    "manifest.sqlite3": (
        "documents",
        "source_runs",
        "source_run_failures",
        "source_roots",
        "source_schedule",
    ),
    "auth/keys.sqlite3": ("api_keys",),
    "auth/sessions.sqlite3": ("sessions", "pending_logins"),
}
SUFFIX = ".imported"


def legacy_files(data_dir: Path) -> list[Path]:
    """The legacy database files still waiting in ``data_dir``."""
    return [data_dir / name for name in LEGACY_TABLES if (data_dir / name).is_file()]


def _rows(src: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    exists = src.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if exists is None:
        return []
    columns = set(schema.metadata.tables[table].columns.keys())
    rows = []
    for row in src.execute(f"SELECT * FROM {table} ORDER BY rowid"):  # noqa: S608 (fixed names)
        values = {key: row[key] for key in row.keys() if key in columns}
        if table == "source_runs":
            values["full_scan"] = bool(values.get("full_scan"))
        rows.append(values)
    return rows


def import_legacy(db: Database, data_dir: Path) -> tuple[dict[str, int], list[Path]]:
    """Copy every legacy file's rows; returns rows imported per table and the renamed files."""
    files = legacy_files(data_dir)
    counts: dict[str, int] = {}
    sources: list[sqlite3.Connection] = []
    try:
        with db.write() as conn:
            for path in files:
                src = sqlite3.connect(path, timeout=30.0)
                sources.append(src)
                src.row_factory = sqlite3.Row
                for table in LEGACY_TABLES[path.relative_to(data_dir).as_posix()]:
                    rows = _rows(src, table)
                    if rows:
                        stmt = db.insert(schema.metadata.tables[table]).on_conflict_do_nothing()
                        conn.execute(stmt, rows)
                    counts[table] = counts.get(table, 0) + len(rows)
        renamed = []
        for path, src in zip(files, sources):
            src.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            src.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            src.close()
            target = path.with_name(path.name + SUFFIX)
            path.rename(target)
            for extra in ("-wal", "-shm"):
                path.with_name(path.name + extra).unlink(missing_ok=True)
            renamed.append(target)
    finally:
        for src in sources:
            src.close()
    return counts, renamed
