"""Open SQLite databases in WAL mode, safely when several processes create one at once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

RETRY_PAUSE_S = 0.02


def connect_wal(
    path: Path, *, busy_timeout_s: float, check_same_thread: bool = True
) -> sqlite3.Connection:
    """An autocommit connection with WAL journaling and a busy timeout.

    Switching a fresh database to WAL needs an exclusive lock, and SQLite answers
    ``database is locked`` at once (without its busy handler) while another process holds
    it, so two processes creating the database together would see one fail. The switch is
    retried until ``busy_timeout_s`` has passed. ``check_same_thread=False`` lets a pool
    hand the connection to another thread (one thread at a time).
    """
    conn = sqlite3.connect(
        path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=check_same_thread
    )
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                conn.close()
                raise
            time.sleep(RETRY_PAUSE_S)
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    return conn
