"""A data dir as versions before the shared database wrote it: ``manifest.sqlite3`` and
``auth/keys.sqlite3`` / ``auth/sessions.sqlite3`` with the tables, columns and encodings
those versions used (their DDL, verbatim), filled with known rows."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

MANIFEST_DDL = """
CREATE TABLE documents (
    id TEXT PRIMARY KEY, collection TEXT NOT NULL, root TEXT NOT NULL, path TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0, mtime_ns INTEGER NOT NULL DEFAULT 0, content_hash TEXT,
    pending_hash TEXT, file_type TEXT, title TEXT, status TEXT NOT NULL,
    chunk_count INTEGER NOT NULL DEFAULT 0, page_count INTEGER, error_code TEXT,
    error_message TEXT, embedder TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    indexed_at TEXT
);
CREATE INDEX documents_root ON documents (collection, root);
CREATE INDEX documents_status ON documents (status);
CREATE TABLE source_runs (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, collection TEXT NOT NULL, trigger TEXT NOT NULL,
    full_scan INTEGER NOT NULL DEFAULT 0, outcome TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT, host TEXT NOT NULL, pid INTEGER NOT NULL, files_total INTEGER,
    files_done INTEGER NOT NULL DEFAULT 0, eta_s REAL, progress_at TEXT,
    indexed INTEGER NOT NULL DEFAULT 0, unchanged INTEGER NOT NULL DEFAULT 0,
    removed INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0, error TEXT
);
CREATE TABLE source_run_failures (
    run_id TEXT NOT NULL, path TEXT NOT NULL, root TEXT NOT NULL, reason TEXT, message TEXT
);
CREATE TABLE source_roots (
    source TEXT NOT NULL, collection TEXT NOT NULL, root TEXT NOT NULL,
    recorded_at TEXT NOT NULL, PRIMARY KEY (source, collection, root)
);
CREATE TABLE source_schedule (
    source TEXT PRIMARY KEY, next_run_at TEXT, host TEXT NOT NULL, pid INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
"""
KEYS_DDL = """
CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY, name TEXT NOT NULL, digest TEXT NOT NULL, scopes TEXT NOT NULL,
    collections TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT
);
"""
SESSIONS_DDL = """
CREATE TABLE sessions (
    ref TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, provider TEXT NOT NULL,
    subject TEXT NOT NULL, name TEXT NOT NULL, email TEXT, groups TEXT NOT NULL,
    created_at REAL NOT NULL, last_seen REAL NOT NULL, groups_at REAL NOT NULL,
    csrf TEXT NOT NULL, id_token TEXT NOT NULL, access_token TEXT NOT NULL,
    refresh_token TEXT NOT NULL, ended_at REAL
);
CREATE TABLE pending_logins (
    state TEXT PRIMARY KEY, provider TEXT NOT NULL, nonce TEXT NOT NULL,
    verifier TEXT NOT NULL, next_url TEXT NOT NULL, created_at REAL NOT NULL
);
"""


@dataclass
class LegacyDataDir:
    path: Path
    api_key: str  # a key the old store issued (its hash is in keys.sqlite3)
    revoked_key: str
    session_token: str  # a browser's cookie for the old session


def _db(path: Path, ddl: str) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")  # as the old stores opened them
    conn.executescript(ddl)
    os.chmod(path, 0o600)
    return conn


def write_legacy_data_dir(data_dir: Path) -> LegacyDataDir:
    conn = _db(data_dir / "manifest.sqlite3", MANIFEST_DDL)
    big_mtime = 1_764_000_000_123_456_789  # nanoseconds: past 32 bits
    conn.execute(
        "INSERT INTO documents VALUES ('d1', 'main', '/docs', 'a.pdf', 5000000000, ?, 'h1',"
        " NULL, 'pdf', 'A report', 'indexed', 12, 3, NULL, NULL, 'minilm',"
        " '2026-01-01T00:00:00.000+00:00', '2026-01-01T00:00:01.000+00:00',"
        " '2026-01-01T00:00:01.000+00:00')",
        (big_mtime,),
    )
    conn.execute(
        "INSERT INTO documents (id, collection, root, path, size, mtime_ns, status, error_code,"
        " error_message, created_at, updated_at) VALUES ('d2', 'main', '/docs', 'b.pdf', 10,"
        " 1, 'failed', 'encrypted', 'needs a password', 't', 't')"
    )
    conn.execute(
        "INSERT INTO source_runs (id, source, collection, trigger, full_scan, outcome,"
        " started_at, finished_at, host, pid, files_total, files_done, indexed, failed)"
        " VALUES ('r1', 'docs', 'main', 'schedule', 1, 'partial', '2026-01-01T00:00:00',"
        " '2026-01-01T00:01:00', 'oldhost', 4242, 3, 3, 1, 2)"
    )
    for path, reason in (("z.pdf", "encrypted"), ("a.pdf", "timeout")):  # not alphabetical
        conn.execute(
            "INSERT INTO source_run_failures VALUES ('r1', ?, '/docs', ?, 'msg')", (path, reason)
        )
    conn.execute("INSERT INTO source_roots VALUES ('docs', 'main', '/docs', 't')")
    conn.execute("INSERT INTO source_schedule VALUES ('docs', 'soon', 'oldhost', 4242, 't')")
    conn.close()

    auth = data_dir / "auth"
    auth.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = secrets.token_bytes(32)
    (auth / "hmac.key").write_bytes(secret)
    os.chmod(auth / "hmac.key", 0o600)
    keys = _db(auth / "keys.sqlite3", KEYS_DDL)
    issued = []
    for key_id, revoked in (("0123456789ab", None), ("ba9876543210", "2026-01-02T00:00:00")):
        key = f"ih_{key_id}_{secrets.token_urlsafe(32)}"
        digest = hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()
        keys.execute(
            "INSERT INTO api_keys VALUES (?, 'old', ?, 'query', 'main', '2026-01-01', ?)",
            (key_id, digest, revoked),
        )
        issued.append(key)
    keys.close()

    sessions = _db(auth / "sessions.sqlite3", SESSIONS_DDL)
    token = secrets.token_urlsafe(32)
    sessions.execute(
        "INSERT INTO sessions VALUES ('ref1', ?, 'corp', 'u1', 'Uma', NULL, '[\"hr\"]', 1.5,"
        " 2.5, 1.5, 'csrf', 'idt', 'at', 'rt', NULL)",
        (hashlib.sha256(token.encode()).hexdigest(),),
    )
    sessions.execute("INSERT INTO pending_logins VALUES ('st', 'corp', 'n', 'v', '/', 1e12)")
    sessions.close()
    return LegacyDataDir(data_dir, issued[0], issued[1], token)
