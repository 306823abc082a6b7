"""A real PostgreSQL server for the tests (pytest plugin, loaded by tests/conftest.py).

``pg_server`` (session): Debian's PostgreSQL (``/usr/lib/postgresql/<v>/bin``, or
``INHOUSE_TEST_PG_BIN``) initialised with ``initdb`` in a temporary directory and started
with ``pg_ctl`` on a free loopback port; as root it runs as the ``postgres`` user (initdb
refuses root). It FAILS, never skips, when PostgreSQL is missing: CI installs it.
``pg_url`` (function): a fresh, empty database on it for one test (dropped afterwards).
``db_url`` (function, parametrized ``sqlite`` / ``postgresql``): the backend under test; for
PostgreSQL ``INHOUSE_DATABASE_URL`` is set, for SQLite it is unset (the data-dir default).
``database`` (function): an ``ingest.db.Database`` on ``db_url`` for the test's data dir.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_names = itertools.count()


def _pg_bin() -> Path:
    configured = os.environ.get("INHOUSE_TEST_PG_BIN")
    candidates = [configured] if configured else sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    for folder in reversed(candidates):
        if folder and (Path(folder) / "initdb").exists():
            return Path(folder)
    pytest.fail(
        "PostgreSQL is not installed (apt-get install postgresql, or set INHOUSE_TEST_PG_BIN):"
        " the shared-state tests need a real server",
        pytrace=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    port: int
    directory: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self) -> str:
        name = f"t{os.getpid()}_{next(_names)}"
        self.admin(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bin_dir = _pg_bin()
    directory = Path(tempfile.mkdtemp(prefix="inhouse-pg-"))
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(directory, "postgres", "postgres")
    data = directory / "data"
    port = _free_port()
    run: Any = lambda args: subprocess.run(  # noqa: E731
        prefix + args, check=True, capture_output=True, text=True, timeout=120
    )
    run([str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8"])
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = directory / "server.log"
    run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"])
    try:
        yield PgServer(port, directory)
    finally:
        subprocess.run(
            prefix + [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture()
def pg_url(pg_server: PgServer) -> Iterator[str]:
    name = pg_server.create_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """None for the SQLite default, else the PostgreSQL URL (INHOUSE_DATABASE_URL set)."""
    if request.param == "sqlite":
        monkeypatch.delenv("INHOUSE_DATABASE_URL", raising=False)
        return None
    url: str = request.getfixturevalue("pg_url")
    monkeypatch.setenv("INHOUSE_DATABASE_URL", url)
    return url


@pytest.fixture()
def database(db_url: str | None, data_dir: Path) -> Iterator[Any]:
    from ingest.db import open_database
    from ingest.settings import IngestSettings

    db = open_database(IngestSettings(data_dir=data_dir))
    try:
        yield db
    finally:
        db.dispose()
