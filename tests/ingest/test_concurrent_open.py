"""Processes that open a fresh database at the same instant (two workers, a worker and the
CLI) all succeed: creating the schema is not a race (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.db import open_database
from ingest.db.migrate import head_revision
from ingest.manifest import Manifest
from ingest.runs import RunStore
from ingest.settings import IngestSettings
from tests.concurrent_start import race
from tests.pg_support import PgServer


def open_run_store(data_dir: Path) -> None:
    store = RunStore(Manifest.open(IngestSettings(data_dir=data_dir)))
    store.manifest.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_creating_the_database_together_all_succeed(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    head_revision()  # parsed once here, not in each forked process
    monkeypatch.delenv("INHOUSE_DATABASE_URL", raising=False)
    server: PgServer | None = request.getfixturevalue("pg_server") if backend != "sqlite" else None

    def fresh(n: int) -> Path:
        if server is not None:  # the forked processes inherit the environment
            monkeypatch.setenv("INHOUSE_DATABASE_URL", server.url(server.create_database()))
        return tmp_path / f"data{n}"

    rounds = 40 if server is None else 10
    failures = race(open_run_store, fresh, processes=4, rounds=rounds)
    assert failures == [], f"{len(failures)} failed opens; first:\n{failures[0]}"
    db = open_database(IngestSettings(data_dir=tmp_path / "data0"), check=False)
    try:
        with db.read() as conn:
            from ingest.db.migrate import current_revision

            assert current_revision(conn) == head_revision()
    finally:
        db.dispose()
    assert os.environ.get("INHOUSE_DATABASE_URL") is None or server is not None
