"""Sessions in the shared-state database (SQLite and PostgreSQL): tokens stored hashed,
updates, ends, and a pending login that only one of two concurrent callbacks can consume."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest
from sqlalchemy import select

from ingest.db import Database
from ingest.db.schema import sessions
from service.auth.sessions import (
    PENDING_TTL_S,
    DatabaseSessionStore,
    PendingLogin,
    SessionRecord,
    new_csrf,
    new_ref,
)


def record(**changes: object) -> SessionRecord:
    base = SessionRecord(
        ref=new_ref(), provider="corp", subject="u1", name="Uma", email="uma@example.com",
        groups=("finance", "hr"), created_at=100.0, last_seen=100.0, groups_at=100.0,
        csrf=new_csrf(), id_token="idt", access_token="at", refresh_token="rt",
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture()
def store(database: Database) -> DatabaseSessionStore:
    return DatabaseSessionStore(database)


def test_create_find_update_end(store: DatabaseSessionStore, database: Database) -> None:
    first = record()
    token = store.create(first)
    assert store.by_token(token) == first and store.get(first.ref) == first
    assert store.by_token(token + "x") is None and store.get("nope") is None
    with database.read() as conn:  # the cookie token itself is never stored
        assert token not in json.dumps([list(r) for r in conn.execute(select(sessions))])
    seen = replace(first, last_seen=160.5, groups=("finance",))
    store.update(seen)
    assert store.get(first.ref) == seen
    second = record(created_at=200.0, subject="u2")
    store.create(second)
    assert [r.ref for r in store.active()] == [first.ref, second.ref]
    ended = store.end(first.ref, 300.0)
    assert ended is not None and ended.ended_at == 300.0 and not ended.active
    assert (ended.access_token, ended.refresh_token) == ("", "")
    store.update(replace(seen, name="changed"))  # an ended session stays ended
    assert store.get(first.ref).name == "Uma"  # type: ignore[union-attr]
    assert [r.ref for r in store.active()] == [second.ref]
    assert store.end("unknown", 1.0) is None


def test_pending_login_is_consumed_once(store: DatabaseSessionStore) -> None:
    login = PendingLogin("state1", "corp", "nonce", "verifier", "/next", created_at=1000.0)
    store.add_pending(login)
    results: list[PendingLogin | None] = []
    barrier = threading.Barrier(2)

    def pop() -> None:
        barrier.wait()
        results.append(store.pop_pending("state1", 1001.0))

    threads = [threading.Thread(target=pop) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=lambda r: r is None) == [login, None]

    store.add_pending(replace(login, state="old"))
    assert store.pop_pending("old", 1000.0 + PENDING_TTL_S + 1) is None  # expired
    store.add_pending(replace(login, state="s2", created_at=1000.0))
    later = replace(login, state="s3", created_at=1000.0 + PENDING_TTL_S + 5)
    store.add_pending(later)  # purges logins older than the TTL
    assert store.pop_pending("s2", 1001.0) is None
    assert store.pop_pending("s3", later.created_at) == later
