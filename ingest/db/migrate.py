"""Schema revisions (Alembic): what the database is at, what this build needs, upgrades.

A fresh, empty database is brought to the newest revision by whichever process opens it
first (under the ``schema`` lock), so a new install just works. A database at an older
revision, or a data dir still holding the SQLite files of versions before the shared
database (``manifest.sqlite3``, ``auth/keys.sqlite3``, ``auth/sessions.sqlite3``), is left
alone: commands refuse to start (:class:`SchemaOutdated`, exit 2) until an operator runs
``inhouse db upgrade``, which migrates and imports the legacy rows once.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from ingest.db.engine import Database, SchemaOutdated
from ingest.db.legacy import import_legacy, legacy_files
from ingest.db.schema import metadata

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"
SCHEMA_LOCK = "schema"
SCHEMA_LOCK_WAIT_S = 120.0
UPGRADE_HINT = "run `inhouse db upgrade` (back the database up first)"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The newest revision this build knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


@cache
def known_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(rev.revision for rev in script.walk_revisions())


def current_revision(conn: Connection) -> str | None:
    """The revision stamped in the database (None: never migrated). Read directly: every
    process start checks it, and Alembic's migration context logs on each set-up."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    versions = list(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())
    if len(versions) > 1:  # branches: this project keeps one line of revisions
        raise SchemaOutdated(f"the database has several schema heads: {', '.join(versions)}")
    return versions[0] if versions else None


def _has_our_tables(conn: Connection) -> bool:
    names = set(inspect(conn).get_table_names())
    return any(table in names for table in metadata.tables)


def _legacy(db: Database) -> list[Path]:
    return legacy_files(db.data_dir) if db.data_dir is not None else []


def check_schema(db: Database) -> None:
    """Return when the database is at head (creating a fresh one); else raise."""
    head = head_revision()
    with db.read() as conn:
        current = current_revision(conn)
    if current == head and not _legacy(db):
        return
    if current is None and not _legacy(db):
        lock = db.lock(SCHEMA_LOCK).acquire(timeout=SCHEMA_LOCK_WAIT_S)
        try:
            with db.write() as conn:
                current = current_revision(conn)
                if current is None and not _has_our_tables(conn):
                    _upgrade(conn)
                    return
        finally:
            lock.release()
        if current == head:
            return
    raise SchemaOutdated(outdated_message(db, current, head))


def outdated_message(db: Database, current: str | None, head: str) -> str:
    legacy = _legacy(db)
    if legacy:
        names = ", ".join(str(p.relative_to(db.data_dir or p.parent)) for p in legacy)
        return (
            f"{db.data_dir} holds state from an older version of inhouse ({names});"
            f" {UPGRADE_HINT} to import it into {db.display_url}"
        )
    if current is not None and current not in known_revisions():
        return (
            f"the database {db.display_url} is at schema revision {current}, newer than this"
            f" version of inhouse knows (head {head}): upgrade inhouse"
        )
    return (
        f"the database {db.display_url} is at schema revision {current or 'none'}, this version"
        f" of inhouse needs {head}: {UPGRADE_HINT}"
    )


def _upgrade(conn: Connection) -> None:
    command.upgrade(alembic_config(conn), "head")


def upgrade(db: Database) -> dict[str, Any]:
    """Migrate to head and import legacy files; returns what was done (``--json`` shape)."""
    head = head_revision()
    imported: dict[str, int] = {}
    renamed: list[str] = []
    lock = db.lock(SCHEMA_LOCK).acquire(timeout=SCHEMA_LOCK_WAIT_S)
    try:
        with db.write() as conn:
            before = current_revision(conn)
            if before is not None and before not in known_revisions():
                raise SchemaOutdated(outdated_message(db, before, head))
            if before != head:
                _upgrade(conn)
        if db.data_dir is not None and legacy_files(db.data_dir):
            imported, moved = import_legacy(db, db.data_dir)
            renamed = [str(p) for p in moved]
    finally:
        lock.release()
    return {
        "url": db.display_url,
        "dialect": db.dialect,
        "from_revision": before,
        "revision": head,
        "migrated": before != head,
        "imported": imported,
        "renamed": renamed,
    }


def status(db: Database) -> dict[str, Any]:
    """Where the database stands (``inhouse db status --json``)."""
    head = head_revision()
    with db.read() as conn:
        current = current_revision(conn)
    legacy = _legacy(db)
    return {
        "url": db.display_url,
        "dialect": db.dialect,
        "revision": current,
        "head": head,
        "up_to_date": current == head and not legacy,
        "legacy_files": [str(p) for p in legacy],
    }
