"""API keys: created once, shown once, stored only as a keyed hash, revocable at once.

A key reads ``ih_<key id>_<secret>``: 12 hex characters of id (safe to log and list) and
``secrets.token_urlsafe(32)`` (256 random bits). The database keeps
``HMAC-SHA256(server secret, key)``, never the key. The server secret is 32 random bytes in
``<data dir>/auth/hmac.key`` (0600), apart from the database, so a copied database alone
cannot even confirm a guess.

Why HMAC and not argon2: argon2 makes *low-entropy* secrets (passwords) expensive to guess.
These keys carry 256 random bits, beyond brute force at any speed, so a slow hash buys no
security, while it would cost ~50 ms and 64 MiB on *every* request (and be a denial-of-service
lever). HMAC-SHA256 verifies in microseconds; the comparison is ``hmac.compare_digest``.

Every verification reads the database (a primary-key lookup, well under a millisecond), so a
revocation made by ``inhouse keys revoke`` in another process applies to the very next request.
The keys live in the shared-state database (``ingest.db``: SQLite in the data dir, or
PostgreSQL shared by every replica). Replicas on several hosts need the same ``hmac.key``:
its fingerprint is recorded in the database by the first store to open it, and a store with
another secret refuses to start (:class:`SecretMismatch`) instead of rejecting every key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ingest.db import Database, open_database
from ingest.db.schema import api_keys, auth_secrets
from ingest.settings import IngestSettings, SettingsError
from service.caller import Caller, make_caller, parse_collections, parse_scopes
from service.errors import AuthError

PREFIX = "ih_"
KEY_RE = re.compile(r"ih_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")  # fullmatch only
ENV_KEY_ID = "env-admin"  # INHOUSE_ADMIN_KEY given in a free form
SECRET_BYTES = 32


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored key (never the key itself)."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    collections: tuple[str, ...]
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def caller(self) -> Caller:
        return make_caller(self.key_id, self.name, self.scopes, self.collections)

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["scopes"], out["collections"] = list(self.scopes), list(self.collections)
        out["active"] = self.active
        return out


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly created key: ``key`` is shown once and never stored."""

    key: str
    record: KeyRecord


class SecretMismatch(SettingsError):
    """This host's ``auth/hmac.key`` is not the one the database's keys were hashed with."""


def key_id_of(key: str) -> str:
    """The id a presented key claims (``env-admin`` for a free-form INHOUSE_ADMIN_KEY)."""
    match = KEY_RE.fullmatch(key)
    return match.group(1) if match else ENV_KEY_ID


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with 0600 permissions, whole or not at all; fails if it exists.

    The bytes go to a private temporary file first and are hard-linked into place, so a
    process starting at the same moment never reads a half-written secret.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, and refuses to replace an existing secret
    finally:
        tmp.unlink()


def load_server_secret(auth_dir: Path) -> bytes:
    """The HMAC secret, created on first use; refuses one readable by group or others."""
    auth_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = auth_dir / "hmac.key"
    if not path.exists():
        try:
            _write_private(path, secrets.token_bytes(SECRET_BYTES))
        except FileExistsError:
            pass  # another process created it first: use theirs
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"{path} is truncated ({len(secret)} bytes); restore it from backup")
    return secret


class KeyStore:
    """API keys in the shared-state database, safe across threads, processes and hosts."""

    def __init__(self, data_dir: Path, db: Database | None = None) -> None:
        """``db``: the process's database (default: opened from the environment for
        ``data_dir``, and disposed of by :meth:`close`)."""
        self.dir = data_dir / "auth"
        self._secret = load_server_secret(self.dir)
        self._owned = db is None
        self.db = db if db is not None else open_database(IngestSettings(data_dir=data_dir))
        try:
            self._check_secret()
        except BaseException:
            self.close()
            raise

    # -- plumbing -----------------------------------------------------------------------
    def _check_secret(self) -> None:
        fingerprint = hmac.new(self._secret, b"inhouse key-hash fingerprint", "sha256").hexdigest()
        stmt = self.db.insert(auth_secrets).values(
            name="hmac.key", fingerprint=fingerprint, created_at=utc_now()
        )
        with self.db.write() as conn:
            conn.execute(stmt.on_conflict_do_nothing())
            recorded = conn.execute(
                select(auth_secrets.c.fingerprint).where(auth_secrets.c.name == "hmac.key")
            ).scalar_one()
        if not hmac.compare_digest(recorded, fingerprint):
            raise SecretMismatch(
                f"{self.dir / 'hmac.key'} is not the secret the API keys in"
                f" {self.db.display_url} were made with: copy auth/hmac.key from a host"
                " whose keys work (every replica needs the same file)"
            )

    def close(self) -> None:
        if self._owned:
            self.db.dispose()

    def _digest(self, key: str) -> str:
        return hmac.new(self._secret, key.encode("utf-8"), hashlib.sha256).hexdigest()

    @staticmethod
    def _record(row: Any) -> KeyRecord:
        return KeyRecord(
            key_id=str(row.key_id),
            name=str(row.name),
            scopes=tuple(str(row.scopes).split(",")),
            collections=tuple(str(row.collections).split(",")),
            created_at=str(row.created_at),
            revoked_at=None if row.revoked_at is None else str(row.revoked_at),
        )

    # -- management ---------------------------------------------------------------------
    def create(self, name: str, scopes: Sequence[str], collections: Sequence[str]) -> NewKey:
        """Make a key; the returned ``NewKey.key`` is the only copy that will ever exist."""
        name = name.strip()
        if not name:
            raise ValueError("a key needs a name (who or what uses it)")
        scope_list, coll_list = parse_scopes(scopes), parse_collections(collections)
        for _ in range(5):
            key_id = secrets.token_hex(6)
            key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
            try:
                record = self._insert(key_id, name, key, scope_list, coll_list)
            except IntegrityError:
                continue  # 48-bit id collision: draw again
            return NewKey(key, record)
        raise RuntimeError("could not draw a free key id")

    def _insert(
        self,
        key_id: str,
        name: str,
        key: str,
        scopes: Sequence[str],
        collections: Sequence[str],
        *,
        replace: bool = False,
    ) -> KeyRecord:
        record = KeyRecord(key_id, name, tuple(scopes), tuple(collections), utc_now(), None)
        values = {
            "key_id": key_id,
            "name": name,
            "digest": self._digest(key),
            "scopes": ",".join(scopes),
            "collections": ",".join(collections),
            "created_at": record.created_at,
            "revoked_at": None,
        }
        stmt = self.db.insert(api_keys).values(**values)
        if replace:
            stmt = stmt.on_conflict_do_update(
                index_elements=["key_id"], set_={k: v for k, v in values.items() if k != "key_id"}
            )
        with self.db.write() as conn:
            conn.execute(stmt)
        return record

    def install(self, key: str, name: str = "admin (INHOUSE_ADMIN_KEY)") -> tuple[KeyRecord, str]:
        """Store an operator-supplied admin key (hashed); returns (record, what happened).

        Idempotent across restarts. A key that was revoked stays revoked (revocation wins
        over the environment); a different key under the same id replaces the old one.
        """
        key_id = key_id_of(key)
        existing = self.get(key_id)
        if existing is not None:
            same = hmac.compare_digest(self._stored_digest(key_id) or "", self._digest(key))
            if same and not existing.active:
                return existing, "revoked"
            if same:
                return existing, "unchanged"
        record = self._insert(key_id, name, key, ("admin",), ("*",), replace=True)
        return record, "installed" if existing is None else "replaced"

    def _row(self, key_id: str) -> Any:
        with self.db.read() as conn:
            return conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()

    def _stored_digest(self, key_id: str) -> str | None:
        row = self._row(key_id)
        return None if row is None else str(row.digest)

    def get(self, key_id: str) -> KeyRecord | None:
        row = self._row(key_id)
        return None if row is None else self._record(row)

    def records(self, *, include_revoked: bool = True) -> list[KeyRecord]:
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
        with self.db.read() as conn:
            records = [self._record(r) for r in conn.execute(query)]
        return [r for r in records if include_revoked or r.active]

    def active_count(self) -> int:
        query = select(func.count()).where(api_keys.c.revoked_at.is_(None))
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke a key (effective for the next request); ``KeyError`` if unknown.

        Revoking a revoked key keeps its first revocation time.
        """
        with self.db.write() as conn:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utc_now())
            )
        record = self.get(key_id)
        if record is None:
            raise KeyError(key_id)
        return record

    # -- per request --------------------------------------------------------------------
    def verify(self, key: str) -> Caller:
        """The caller a presented key belongs to; ``AuthError`` if unknown, wrong or revoked."""
        presented = self._digest(key)
        row = self._row(key_id_of(key))
        stored = str(row.digest) if row is not None else "0" * len(presented)
        if not hmac.compare_digest(stored, presented) or row is None:
            raise AuthError("unknown API key")
        record = self._record(row)
        if not record.active:
            raise AuthError(f"API key {record.key_id} was revoked at {record.revoked_at}")
        return record.caller()
