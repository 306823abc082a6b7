"""Server-side sessions of signed-in users, and the logins under way.

The browser holds only a random session token (256 bits) in an HttpOnly cookie; the store
keeps its SHA-256, so a copied database cannot be replayed as cookies. Each session also has
a public ``ref`` (safe to list and log: ``DELETE /v1/admin/sessions/{ref}`` ends it) and a
CSRF token the page echoes in ``X-CSRF-Token``. A pending login (state -> nonce, PKCE
verifier) lives ten minutes and is consumed exactly once.

``SessionStore`` is the interface; ``DatabaseSessionStore`` keeps sessions in the
shared-state database (``ingest.db``: SQLite in the data dir, or PostgreSQL), so every worker
and every replica sees the same sessions.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import astuple, dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, select, update

from ingest.db import Database
from ingest.db.schema import pending_logins, sessions

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
    """Where sessions live (``DatabaseSessionStore``; tests may pass their own)."""

    def create(self, record: SessionRecord) -> str: ...  # returns the cookie token
    def by_token(self, token: str) -> SessionRecord | None: ...
    def get(self, ref: str) -> SessionRecord | None: ...
    def update(self, record: SessionRecord) -> None: ...
    def end(self, ref: str, when: float) -> SessionRecord | None: ...
    def active(self) -> list[SessionRecord]: ...
    def add_pending(self, login: PendingLogin) -> None: ...
    def pop_pending(self, state: str, now: float) -> PendingLogin | None: ...
    def close(self) -> None: ...


COLUMNS = (
    "ref", "provider", "subject", "name", "email", "groups", "created_at", "last_seen",
    "groups_at", "csrf", "id_token", "access_token", "refresh_token", "ended_at",
)  # fmt: skip


PENDING = ("state", "provider", "nonce", "verifier", "next_url", "created_at")


def new_ref() -> str:
    return secrets.token_hex(6)


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


class DatabaseSessionStore:
    """Sessions in the shared-state database, safe across threads, processes and hosts."""

    def __init__(self, db: Database, *, owned: bool = False) -> None:
        """``owned``: :meth:`close` disposes of ``db`` too."""
        self.db = db
        self._owned = owned

    def close(self) -> None:
        if self._owned:
            self.db.dispose()

    @staticmethod
    def _record(row: Any) -> SessionRecord:
        values = {name: getattr(row, name) for name in COLUMNS}
        values["groups"] = tuple(json.loads(str(values["groups"])))
        return SessionRecord(**values)

    @staticmethod
    def _values(record: SessionRecord) -> dict[str, object]:
        values = {name: getattr(record, name) for name in COLUMNS}
        values["groups"] = json.dumps(list(record.groups))
        return values

    def _one(self, where: Any) -> SessionRecord | None:
        with self.db.read() as conn:
            row = conn.execute(select(sessions).where(where)).first()
        return None if row is None else self._record(row)

    def create(self, record: SessionRecord) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with self.db.write() as conn:
            conn.execute(
                sessions.insert().values(token_hash=token_hash(token), **self._values(record))
            )
        return token

    def by_token(self, token: str) -> SessionRecord | None:
        return self._one(sessions.c.token_hash == token_hash(token))

    def get(self, ref: str) -> SessionRecord | None:
        return self._one(sessions.c.ref == ref)

    def update(self, record: SessionRecord) -> None:
        values = self._values(record)
        del values["ref"]
        with self.db.write() as conn:
            conn.execute(
                update(sessions)
                .where(sessions.c.ref == record.ref, sessions.c.ended_at.is_(None))
                .values(**values)
            )

    def end(self, ref: str, when: float) -> SessionRecord | None:
        """End a session (its tokens are forgotten); None if unknown."""
        with self.db.write() as conn:
            conn.execute(
                update(sessions)
                .where(sessions.c.ref == ref, sessions.c.ended_at.is_(None))
                .values(ended_at=when, access_token="", refresh_token="")
            )
        return self.get(ref)

    def active(self) -> list[SessionRecord]:
        query = select(sessions).where(sessions.c.ended_at.is_(None))
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(sessions.c.created_at)).all()
        return [self._record(r) for r in rows]

    def add_pending(self, login: PendingLogin) -> None:
        stale = login.created_at - PENDING_TTL_S
        with self.db.write() as conn:
            conn.execute(delete(pending_logins).where(pending_logins.c.created_at < stale))
            conn.execute(pending_logins.insert().values(**dict(zip(PENDING, astuple(login)))))

    def pop_pending(self, state: str, now: float) -> PendingLogin | None:
        """The login for ``state``, removed so it cannot be completed twice (one DELETE
        ... RETURNING: of two concurrent callbacks, only one gets the row)."""
        stmt = (
            delete(pending_logins)
            .where(pending_logins.c.state == state)
            .returning(*(pending_logins.c[name] for name in PENDING))
        )
        with self.db.write() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        login = PendingLogin(*row)
        return login if now - login.created_at <= PENDING_TTL_S else None
