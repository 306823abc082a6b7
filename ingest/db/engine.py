"""The shared-state database: SQLite in the data dir by default, PostgreSQL when asked.

``INHOUSE_DATABASE_URL`` picks it: ``postgresql://user:pass@host/db`` (psycopg 3; the plain
``postgresql://`` scheme is mapped to the psycopg driver) or ``sqlite:///path``. Unset, the
database is ``sqlite:///<data dir>/inhouse.sqlite3`` (WAL, 30 s busy timeout, mode 0600: it
holds key hashes and sessions). Every store (manifest, runs, keys, sessions) goes through a
:class:`Database`; its ``lock(name)`` is the cross-process lock of the backend (flock files
on one host for SQLite, session-level advisory locks for PostgreSQL, valid across hosts).

Passwords never leave this module: :attr:`Database.display_url` hides them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from ingest.locks import FileLock, Lock
from ingest.settings import SettingsError
from ingest.sqlite_wal import connect_wal

if TYPE_CHECKING:
    from ingest.settings import IngestSettings

SQLITE_FILE = "inhouse.sqlite3"
BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10
WRITE_OPTION = "inhouse_write"  # execution option: SQLite opens the transaction IMMEDIATE
Dialect = Literal["sqlite", "postgresql"]


class DatabaseUrlError(SettingsError):
    """``INHOUSE_DATABASE_URL`` is not a URL this build can use (the URL is never echoed)."""


class DatabaseUnavailable(SettingsError):
    """The database cannot be reached (down, wrong address or credentials)."""


class SchemaOutdated(SettingsError):
    """The database (or a legacy data dir) is at an older schema: run ``inhouse db upgrade``.

    A ``SettingsError``, so every command reports it as a usage error (exit 2)."""


def normalize_url(url: str | URL) -> URL:
    """``url`` with the driver this build uses; :class:`DatabaseUrlError` if unusable."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUrlError(
            "INHOUSE_DATABASE_URL is not a database URL (postgresql://... or sqlite:///...)"
        ) from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):  # any driver named: this build has psycopg 3
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise DatabaseUrlError("INHOUSE_DATABASE_URL: a SQLite database needs a file path")
        return parsed.set(drivername="sqlite+pysqlite")
    raise DatabaseUrlError(
        f"INHOUSE_DATABASE_URL: unsupported database {backend!r} (use postgresql or sqlite)"
    )


def application_name() -> str:
    """How this process names itself to PostgreSQL (shown as a lock's holder)."""
    return f"inhouse pid={os.getpid()} host={socket.gethostname()}"[:63]


class Database:
    """One database and its locks; thread-safe (a pool of connections)."""

    def __init__(self, url: str | URL, *, lock_dir: Path, data_dir: Path | None = None) -> None:
        """``lock_dir``: where SQLite's lock files go (``<data dir>/locks``); ``data_dir``:
        the data dir whose pre-database SQLite files ``inhouse db upgrade`` imports."""
        self.url = normalize_url(url)
        self._shown = make_url(url).render_as_string(hide_password=True)
        self.dialect: Dialect = (
            "postgresql" if self.url.get_backend_name() != "sqlite" else "sqlite"
        )
        self.lock_dir = lock_dir
        self.data_dir = data_dir
        self._lock_engine: Engine | None = None
        self.engine = self._sqlite_engine() if self.dialect == "sqlite" else self._pg_engine()

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"

    @property
    def display_url(self) -> str:
        """The URL as configured, its password hidden: safe to print and log."""
        return self._shown

    # -- engines ------------------------------------------------------------------------
    def _sqlite_engine(self) -> Engine:
        path = Path(str(self.url.database)).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():  # created private before SQLite opens it; -wal/-shm copy the mode
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))

        def connect() -> Any:
            conn = connect_wal(path, busy_timeout_s=BUSY_TIMEOUT_S, check_same_thread=False)
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn

        engine = create_engine(self.url, creator=connect, pool_size=5, max_overflow=32)

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # pysqlite's own BEGIN is deferred and implicit; writers take the write lock at
            # once (IMMEDIATE) so that two writers wait on the busy timeout, not deadlock.
            mode = "IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    def _pg_connect_args(self) -> dict[str, Any]:
        return {"application_name": application_name(), "connect_timeout": CONNECT_TIMEOUT_S}

    def _pg_engine(self) -> Engine:
        return create_engine(
            self.url,
            pool_pre_ping=True,  # a restarted server leaves dead pooled connections
            pool_size=5,
            max_overflow=20,
            connect_args=self._pg_connect_args(),
        )

    def lock_engine(self) -> Engine:
        """Unpooled connections for advisory locks (one per held lock, closed on release)."""
        if self._lock_engine is None:
            args = self._pg_connect_args()
            # TCP keepalives: a holder on a host that vanished is noticed in about a minute
            args.update(keepalives=1, keepalives_idle=30, keepalives_interval=10)
            args.update(keepalives_count=3)
            self._lock_engine = create_engine(
                self.url, poolclass=NullPool, connect_args=args, isolation_level="AUTOCOMMIT"
            )
        return self._lock_engine

    # -- use ----------------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (its transaction is rolled back when it is returned)."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on error."""
        with self.engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    def insert(self, table: Table) -> Any:
        """The dialect's INSERT, which has ``on_conflict_do_update`` / ``_do_nothing``."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def lock(self, name: str) -> Lock:
        """An exclusive lock shared by every process using this database; a dead holder's
        lock is free. ``acquire(timeout)`` raises ``ingest.locks.LockBusy`` with the holder."""
        if self.dialect == "postgresql":
            from ingest.db.advisory import AdvisoryLock

            return AdvisoryLock(self.lock_engine(), name)
        return FileLock(self.lock_dir / f"{name}.lock")

    def lock_busy(self, name: str) -> bool:
        """Whether someone holds the lock ``name`` now, without taking it (queue workers ask
        before touching a collection that a re-embed may hold)."""
        if self.dialect == "postgresql":
            from ingest.db.advisory import advisory_held

            with self.read() as conn:
                return advisory_held(conn, name)
        return FileLock(self.lock_dir / f"{name}.lock").busy()

    def check_schema(self) -> None:
        """Create a fresh database at the newest schema; raise :class:`SchemaOutdated` for
        one at an older revision (or a data dir with legacy files to import)."""
        from ingest.db.migrate import check_schema

        check_schema(self)

    def unavailable(self, exc: OperationalError) -> DatabaseUnavailable:
        """``exc`` as a usage error naming the database (password hidden) and the cause."""
        cause = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc) else ""
        return DatabaseUnavailable(f"cannot use the database {self.display_url}: {cause}")

    def dispose(self) -> None:
        """Close every pooled connection (held locks keep their own)."""
        self.engine.dispose()
        if self._lock_engine is not None:
            self._lock_engine.dispose()


def database_url(settings: IngestSettings) -> str:
    """The configured URL, or the default SQLite file in the data dir."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return f"sqlite:///{(settings.data_dir / SQLITE_FILE).absolute()}"


def open_database(settings: IngestSettings, *, check: bool = True) -> Database:
    """The database ``settings`` name, its schema checked (and created when fresh) unless
    ``check`` is false (``inhouse db upgrade`` / ``status`` look before they act)."""
    settings.ensure_data_dir()
    db = Database(
        database_url(settings), lock_dir=settings.data_dir / "locks", data_dir=settings.data_dir
    )
    if check:
        try:
            db.check_schema()
        except OperationalError as exc:
            db.dispose()
            raise db.unavailable(exc) from None
        except BaseException:
            db.dispose()
            raise
    return db
