"""``inhouse db upgrade|status --json`` on both backends, as a user runs them."""

from __future__ import annotations

from pathlib import Path

from tests.ingest.cli_helpers import run_json


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
