"""The shared-state database on both backends: schema at head, migrations matching the
metadata, locks (a holder killed with -9 frees them), URL handling, refusal of old schemas."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from ingest.db import Database, SchemaOutdated, migrate, open_database
from ingest.db.engine import DatabaseUrlError, normalize_url
from ingest.db.schema import metadata
from ingest.locks import LockBusy
from ingest.settings import IngestSettings


def test_fresh_database_is_created_at_head(database: Database, db_url: str | None) -> None:
    assert database.dialect == ("sqlite" if db_url is None else "postgresql")
    with database.read() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
    assert migrate.status(database)["up_to_date"] is True


def test_migrations_match_the_metadata(database: Database) -> None:
    """A table changed in schema.py without a revision (or the reverse) fails here."""
    with database.read() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_sqlite_default_lives_in_the_data_dir_privately(
    database: Database, db_url: str | None, data_dir: Path
) -> None:
    if db_url is not None:
        assert not (data_dir / "inhouse.sqlite3").exists()
        return
    path = data_dir / "inhouse.sqlite3"
    assert path.stat().st_mode & 0o777 == 0o600
    with database.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_writes_commit_and_roll_back(database: Database) -> None:
    table = metadata.tables["source_roots"]
    row = {"source": "s", "collection": "c", "root": "/r", "recorded_at": "t"}
    with database.write() as conn:
        conn.execute(table.insert(), row)
    with pytest.raises(RuntimeError), database.write() as conn:
        conn.execute(table.insert(), {**row, "root": "/other"})
        raise RuntimeError("boom")
    upsert = database.insert(table).values(**row)
    upsert = upsert.on_conflict_do_update(
        index_elements=["source", "collection", "root"],
        set_={"recorded_at": upsert.excluded.recorded_at},
    )
    with database.write() as conn:
        conn.execute(upsert.values(recorded_at="t2"))
    with database.read() as conn:
        rows = conn.execute(table.select()).all()
    assert [(r.root, r.recorded_at) for r in rows] == [("/r", "t2")]


LOCK_HOLDER = """
import sys, time
from pathlib import Path
from ingest.db import Database
db = Database(sys.argv[1], lock_dir=Path(sys.argv[2]))
lock = db.lock("demo").acquire(timeout=10)
print("held", flush=True)
time.sleep(120)
"""


def _url(database: Database) -> str:
    return database.url.render_as_string(hide_password=False)


def test_lock_is_exclusive_across_processes_and_freed_by_kill_9(database: Database) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, _url(database), str(database.lock_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy) as busy:
            database.lock("demo").acquire(timeout=0.3)
        assert f"pid={holder.pid}" in busy.value.holder
        other = database.lock("other").acquire(timeout=0)  # other names are independent
        other.release()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        lock = database.lock("demo").acquire(timeout=10)  # the dead holder's lock is free
        lock.release()
    finally:
        holder.kill()
        holder.wait()


def test_lock_in_one_process_excludes_a_second_holder(database: Database) -> None:
    first = database.lock("same").acquire(timeout=0)
    try:
        with pytest.raises(LockBusy):
            database.lock("same").acquire(timeout=0.1)
    finally:
        first.release()
    with database.lock("same"):
        pass


def test_postgresql_url_is_mapped_to_psycopg_and_the_password_hidden(
    pg_url: str, tmp_path: Path
) -> None:
    url = pg_url.replace("postgres@", "postgres:s3cret@")  # trust auth ignores the password
    db = Database(url, lock_dir=tmp_path)
    try:
        assert db.url.drivername == "postgresql+psycopg"
        assert "s3cret" not in db.display_url and "s3cret" not in repr(db)
        with db.read() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        db.dispose()
    assert "s3cret" not in repr(IngestSettings(database_url=url))


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://", "not a url"])
def test_unusable_urls_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(DatabaseUrlError) as error:
        normalize_url(url)
    assert url not in str(error.value) or url == "sqlite://"


def _fake_newer_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A copy of the migrations with one more revision: the database is then 'older'."""
    copy = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, copy)
    head = migrate.head_revision()
    (copy / "versions" / "9999_next.py").write_text(
        textwrap.dedent(
            f"""
            revision = "9999"
            down_revision = {head!r}
            branch_labels = None
            depends_on = None
            def upgrade() -> None:
                pass
            def downgrade() -> None:
                pass
            """
        )
    )
    monkeypatch.setattr(migrate, "MIGRATIONS", copy)
    migrate.head_revision.cache_clear()
    migrate.known_revisions.cache_clear()
    return head


def test_an_older_schema_is_refused_until_upgraded(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    old = _fake_newer_build(tmp_path, monkeypatch)
    try:
        with pytest.raises(SchemaOutdated) as refused:
            open_database(IngestSettings(data_dir=data_dir))
        assert "inhouse db upgrade" in str(refused.value) and old in str(refused.value)
        result = migrate.upgrade(database)
        assert (result["from_revision"], result["revision"], result["migrated"]) == (
            old,
            "9999",
            True,
        )
        open_database(IngestSettings(data_dir=data_dir)).dispose()
    finally:
        migrate.head_revision.cache_clear()
        migrate.known_revisions.cache_clear()


def test_a_newer_schema_is_refused(database: Database, data_dir: Path) -> None:
    with database.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'zz99'"))
    with pytest.raises(SchemaOutdated, match="newer than this version"):
        open_database(IngestSettings(data_dir=data_dir))


def test_lock_busy_sees_a_holder_without_taking_the_lock(database: Database) -> None:
    assert not database.lock_busy("probe")  # never taken (no lock file yet on SQLite)
    with database.lock("probe"):
        assert database.lock_busy("probe")
        assert database.lock_busy("probe")  # the probe took nothing: still held
        assert not database.lock_busy("other")
    assert not database.lock_busy("probe")
    database.lock("probe").acquire(timeout=0).release()  # no probe left anything held
