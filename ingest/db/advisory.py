"""PostgreSQL session-level advisory locks: one lock across every host using the database.

Each held lock keeps its own connection (``Database.lock_engine``: unpooled, TCP
keepalives). The server releases the lock when that session ends, so a holder killed with
``kill -9`` (or whose host vanished, after the keepalive probes) leaves nothing stuck. The
holder is named by its session's ``application_name`` (``inhouse pid=N host=H``), read from
``pg_locks`` when the lock is busy.
"""

from __future__ import annotations

import hashlib
import time
from types import TracebackType

from sqlalchemy import Connection, Engine, text

from ingest.locks import LockBusy

POLL_S = 0.05


def lock_key(name: str) -> int:
    """The signed 64-bit advisory lock key of ``name`` (stable across processes and hosts)."""
    digest = hashlib.blake2b(f"inhouse:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


HOLDER_SQL = text(
    """SELECT a.application_name, l.pid FROM pg_locks l
       LEFT JOIN pg_stat_activity a ON a.pid = l.pid
       WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
           SELECT oid FROM pg_database WHERE datname = current_database())
         AND l.classid = CAST(:hi AS oid) AND l.objid = CAST(:lo AS oid) AND l.objsubid = 1"""
)


def _key_parts(key: int) -> dict[str, int]:
    """``pg_locks``' classid/objid of a bigint advisory key (its high and low 32 bits)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF}


def advisory_held(conn: Connection, name: str) -> bool:
    """Whether some session holds the advisory lock ``name`` now (read from ``pg_locks`` on
    ``conn``, any pooled connection: nothing is taken)."""
    return conn.execute(HOLDER_SQL, _key_parts(lock_key(name))).first() is not None


class AdvisoryLock:
    """``FileLock``'s interface over ``pg_try_advisory_lock`` (polled until ``timeout``)."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = lock_key(name)
        self._conn: Connection | None = None

    def acquire(self, timeout: float | None = None) -> AdvisoryLock:
        """Take the lock, waiting up to ``timeout`` seconds (None: forever)."""
        if self._conn is not None:
            raise RuntimeError(f"lock {self.name} is already held by this object")
        conn = self.engine.connect()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not conn.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}
            ).scalar():
                if deadline is not None and time.monotonic() >= deadline:
                    raise LockBusy(self.name, self._holder(conn))
                time.sleep(POLL_S)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return self

    def _holder(self, conn: Connection) -> str:
        row = conn.execute(HOLDER_SQL, _key_parts(self.key)).first()
        if row is None:
            return ""
        name = str(row[0] or "")
        return name.removeprefix("inhouse ") if name.startswith("inhouse ") else f"backend={row[1]}"

    def holder(self) -> str:
        """Who holds the lock now ("" when free or unknown)."""
        with self.engine.connect() as conn:
            return self._holder(conn)

    @property
    def held(self) -> bool:
        return self._conn is not None

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        finally:
            conn.close()  # closing the session would release it anyway

    def __enter__(self) -> AdvisoryLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
