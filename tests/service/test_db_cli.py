"""``inhouse db upgrade|status --json`` on both backends, as a user runs them."""

from __future__ import annotations

from pathlib import Path

from tests.ingest.cli_helpers import run_inhouse, run_json


def test_status_then_upgrade_then_status(db_url: str | None, data_dir: Path) -> None:
    code, before = run_json(["db", "status"], data_dir)
    assert code == 0
    expected_dialect = "sqlite" if db_url is None else "postgresql"
    assert before["dialect"] == expected_dialect
    assert (before["revision"], before["up_to_date"], before["legacy_files"]) == (None, False, [])
    head = before["head"]

    code, upgraded = run_json(["db", "upgrade"], data_dir)
    assert code == 0
    assert upgraded == {
        "url": before["url"],
        "dialect": expected_dialect,
        "from_revision": None,
        "revision": head,
        "migrated": True,
        "imported": {},
        "renamed": [],
    }
    code, again = run_json(["db", "upgrade"], data_dir)  # idempotent
    assert (code, again["from_revision"], again["migrated"]) == (0, head, False)

    code, after = run_json(["db", "status"], data_dir)
    assert (code, after["revision"], after["up_to_date"]) == (0, head, True)
    if db_url is None:
        assert after["url"] == f"sqlite:///{data_dir.absolute() / 'inhouse.sqlite3'}"


def test_status_hides_the_password(pg_url: str, data_dir: Path) -> None:
    url = pg_url.replace("postgres@", "postgres:hunter2@")
    code, status = run_json(["db", "status"], data_dir, INHOUSE_DATABASE_URL=url)
    assert code == 0
    assert "hunter2" not in status["url"] and "postgres:***@" in status["url"]


def test_commands_refuse_a_database_of_another_revision(
    db_url: str | None, data_dir: Path, tmp_path: Path
) -> None:
    from sqlalchemy import text

    from ingest.db import open_database
    from ingest.settings import IngestSettings

    db = open_database(IngestSettings(data_dir=data_dir))
    with db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'zz99'"))
    db.dispose()
    done = run_inhouse(["index", "status"], data_dir, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    message = " ".join(done.stderr.split())
    assert "schema revision zz99, newer than this version of inhouse knows" in message
    refused = run_inhouse(["db", "upgrade"], data_dir, timeout=120)  # no "downgrade" either
    assert refused.returncode == 2 and "zz99" in refused.stderr


def test_upgrade_from_0002_adds_the_rate_limit_table(db_url: str | None, data_dir: Path) -> None:
    """A database left at 0002 by the previous version: refused, then migrated to 0003 with
    its rows kept (head pinned here: bump it with each new revision)."""
    from alembic import command
    from sqlalchemy import inspect, select

    from ingest.db import Database
    from ingest.db.engine import database_url
    from ingest.db.migrate import alembic_config
    from ingest.db.schema import api_keys
    from ingest.settings import IngestSettings

    settings = IngestSettings(data_dir=data_dir)
    settings.ensure_data_dir()
    old = Database(database_url(settings), lock_dir=data_dir / "locks", data_dir=data_dir)
    key = {"key_id": "k1", "name": "bot", "digest": "d", "scopes": "query"}
    with old.write() as conn:
        command.upgrade(alembic_config(conn), "0002")
        conn.execute(api_keys.insert().values(**key, collections="*", created_at="t"))
        assert not inspect(conn).has_table("rate_limit_hits")
    old.dispose()

    code, before = run_json(["db", "status"], data_dir)
    assert (code, before["revision"], before["head"], before["up_to_date"]) == (
        0,
        "0002",
        "0003",
        False,
    )
    refused = run_inhouse(["index", "status"], data_dir, timeout=120)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "at schema revision 0002, this version of inhouse needs 0003" in " ".join(
        refused.stderr.split()
    )
    code, upgraded = run_json(["db", "upgrade"], data_dir)
    assert (code, upgraded["from_revision"], upgraded["revision"], upgraded["migrated"]) == (
        0,
        "0002",
        "0003",
        True,
    )
    code, after = run_json(["db", "status"], data_dir)
    assert (code, after["revision"], after["up_to_date"]) == (0, "0003", True)

    db = Database(database_url(settings), lock_dir=data_dir / "locks")
    try:
        with db.read() as conn:
            assert inspect(conn).has_table("rate_limit_hits")
            assert conn.execute(select(api_keys.c.name)).scalars().all() == ["bot"]
    finally:
        db.dispose()
