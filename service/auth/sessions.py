"""Server-side sessions of signed-in users, and the logins under way.

The browser holds only a random session token (256 bits) in an HttpOnly cookie; the store
keeps its SHA-256, so a copied database cannot be replayed as cookies. Each session also has
a public ``ref`` (safe to list and log: ``DELETE /v1/admin/sessions/{ref}`` ends it) and a
CSRF token the page echoes in ``X-CSRF-Token``. A pending login (state -> nonce, PKCE
verifier) lives ten minutes and is consumed exactly once.

``SessionStore`` is the interface; ``SqliteSessionStore`` keeps it in
``<data dir>/auth/sessions.sqlite3`` (WAL, 0600) so several workers share it. A later
PostgreSQL store implements the same methods.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ingest.sqlite_wal import connect_wal

PENDING_TTL_S = 600.0
TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One signed-in user's session (tokens from the provider kept for refresh and logout)."""

    ref: str
    provider: str
    subject: str
    name: str
    email: str | None
    groups: tuple[str, ...]
    created_at: float
    last_seen: float
    groups_at: float
    csrf: str
    id_token: str = ""
    access_token: str = ""
    refresh_token: str = ""
    ended_at: float | None = None

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True, slots=True)
class PendingLogin:
    state: str
    provider: str
    nonce: str
    verifier: str
    next_url: str
    created_at: float = field(default=0.0)


class SessionStore(Protocol):
    """Where sessions live; SQLite here, PostgreSQL later."""

    def create(self, record: SessionRecord) -> str: ...  # returns the cookie token
    def by_token(self, token: str) -> SessionRecord | None: ...
    def get(self, ref: str) -> SessionRecord | None: ...
    def update(self, record: SessionRecord) -> None: ...
    def end(self, ref: str, when: float) -> SessionRecord | None: ...
    def active(self) -> list[SessionRecord]: ...
    def add_pending(self, login: PendingLogin) -> None: ...
    def pop_pending(self, state: str, now: float) -> PendingLogin | None: ...
    def close(self) -> None: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    ref TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, provider TEXT NOT NULL,
    subject TEXT NOT NULL, name TEXT NOT NULL, email TEXT, groups TEXT NOT NULL,
    created_at REAL NOT NULL, last_seen REAL NOT NULL, groups_at REAL NOT NULL,
    csrf TEXT NOT NULL, id_token TEXT NOT NULL, access_token TEXT NOT NULL,
    refresh_token TEXT NOT NULL, ended_at REAL
);
CREATE TABLE IF NOT EXISTS pending_logins (
    state TEXT PRIMARY KEY, provider TEXT NOT NULL, nonce TEXT NOT NULL,
    verifier TEXT NOT NULL, next_url TEXT NOT NULL, created_at REAL NOT NULL
);
"""
COLUMNS = (
    "ref, provider, subject, name, email, groups, created_at, last_seen, groups_at, csrf,"
    " id_token, access_token, refresh_token, ended_at"
)


def new_ref() -> str:
    return secrets.token_hex(6)


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


class SqliteSessionStore:
    """Sessions in ``<data dir>/auth/sessions.sqlite3``, safe across threads and processes."""

    def __init__(self, data_dir: Path) -> None:
        directory = data_dir / "auth"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / "sessions.sqlite3"
        self._local = threading.local()
        new = not self.path.exists()
        self._conn().executescript(SCHEMA)
        if new:
            os.chmod(self.path, 0o600)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_wal(self.path, busy_timeout_s=10.0)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @staticmethod
    def _record(row: Sequence[object]) -> SessionRecord:
        values = list(row)
        values[5] = tuple(json.loads(str(values[5])))
        return SessionRecord(*values)  # type: ignore[arg-type]

    @staticmethod
    def _values(record: SessionRecord) -> tuple[object, ...]:
        return (
            record.ref, record.provider, record.subject, record.name, record.email,
            json.dumps(list(record.groups)), record.created_at, record.last_seen,
            record.groups_at, record.csrf, record.id_token, record.access_token,
            record.refresh_token, record.ended_at,
        )  # fmt: skip

    def create(self, record: SessionRecord) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self._conn().execute(
            f"INSERT INTO sessions (token_hash, {COLUMNS}) VALUES (?{', ?' * 14})",
            (token_hash(token), *self._values(record)),
        )
        return token

    def by_token(self, token: str) -> SessionRecord | None:
        row = (
            self._conn()
            .execute(f"SELECT {COLUMNS} FROM sessions WHERE token_hash = ?", (token_hash(token),))
            .fetchone()
        )
        return None if row is None else self._record(row)

    def get(self, ref: str) -> SessionRecord | None:
        row = (
            self._conn().execute(f"SELECT {COLUMNS} FROM sessions WHERE ref = ?", (ref,)).fetchone()
        )
        return None if row is None else self._record(row)

    def update(self, record: SessionRecord) -> None:
        names = [c.strip() for c in COLUMNS.split(",")][1:]
        sets = ", ".join(f"{n} = ?" for n in names)
        self._conn().execute(
            f"UPDATE sessions SET {sets} WHERE ref = ? AND ended_at IS NULL",
            (*self._values(record)[1:], record.ref),
        )

    def end(self, ref: str, when: float) -> SessionRecord | None:
        """End a session (its tokens are forgotten); None if unknown."""
        self._conn().execute(
            "UPDATE sessions SET ended_at = ?, access_token = '', refresh_token = ''"
            " WHERE ref = ? AND ended_at IS NULL",
            (when, ref),
        )
        return self.get(ref)

    def active(self) -> list[SessionRecord]:
        rows = self._conn().execute(
            f"SELECT {COLUMNS} FROM sessions WHERE ended_at IS NULL ORDER BY created_at"
        )
        return [self._record(r) for r in rows]

    def add_pending(self, login: PendingLogin) -> None:
        conn = self._conn()
        stale = login.created_at - PENDING_TTL_S
        conn.execute("DELETE FROM pending_logins WHERE created_at < ?", (stale,))
        conn.execute(
            "INSERT INTO pending_logins VALUES (?, ?, ?, ?, ?, ?)",
            (login.state, login.provider, login.nonce, login.verifier, login.next_url,
             login.created_at),
        )  # fmt: skip

    def pop_pending(self, state: str, now: float) -> PendingLogin | None:
        """The login for ``state``, removed so it cannot be completed twice."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT state, provider, nonce, verifier, next_url, created_at"
                " FROM pending_logins WHERE state = ?",
                (state,),
            ).fetchone()
            conn.execute("DELETE FROM pending_logins WHERE state = ?", (state,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        if row is None:
            return None
        login = PendingLogin(*row)
        return login if now - login.created_at <= PENDING_TTL_S else None
