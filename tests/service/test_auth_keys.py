"""API keys: stored only as keyed hashes, survive restarts, revocation is immediate (the
store tests run on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from ingest.db.schema import api_keys
from service.auth.access import AccessControl, bearer_token, open_access
from service.auth.keys import KEY_RE, KeyStore, SecretMismatch
from service.caller import Caller, parse_collections, parse_scopes, require, searchable
from service.errors import AuthError, Forbidden, RateLimited
from service.settings import ServiceSettings
from tests.concurrent_start import race
from tests.ingest.cli_helpers import run_inhouse

both_backends = pytest.mark.usefixtures("db_url")


@both_backends
def test_key_shape_and_storage(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    new = store.create("alice", ["query"], ["finance"])
    assert KEY_RE.fullmatch(new.key) and new.key.startswith(f"ih_{new.record.key_id}_")
    # only a digest is stored: the key's secret part appears nowhere on disk or in the database
    secret = new.key.split("_", 2)[2]
    for path in [*(tmp_path / "auth").iterdir(), *tmp_path.glob("inhouse.sqlite3*")]:
        assert secret.encode() not in path.read_bytes(), path
    with store.db.read() as conn:
        assert secret not in json.dumps([list(r) for r in conn.execute(select(api_keys))])
    for path in (tmp_path / "auth" / "hmac.key", tmp_path / "inhouse.sqlite3"):
        if path.exists() or path.name == "hmac.key":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    caller = store.verify(new.key)
    expected = Caller(new.record.key_id, "alice", frozenset({"query"}), frozenset({"finance"}))
    assert caller == expected


@both_backends
def test_wrong_unknown_and_tampered_keys_fail(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    key = store.create("bob", ["query"], ["*"]).key
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    other_id = "ih_000000000000_" + key.split("_", 2)[2]
    for bad in (tampered, other_id, "ih_", "x" * 50, ""):
        with pytest.raises(AuthError) as err:
            store.verify(bad)
        assert err.value.code == "unauthorized"


@both_backends
def test_keys_survive_restart_and_revocation_is_immediate(tmp_path: Path) -> None:
    first = KeyStore(tmp_path)
    new = first.create("carol", ["query", "reasoning:read"], ["hr", "finance"])
    first.close()
    second = KeyStore(tmp_path)  # a restart: same secret, same database
    assert second.verify(new.key).scopes == frozenset({"query", "reasoning:read"})
    third = KeyStore(tmp_path)  # e.g. the CLI in another process
    third.revoke(new.record.key_id)
    with pytest.raises(AuthError, match="revoked"):
        second.verify(new.key)  # the long-lived store sees it on the very next check
    assert [r.active for r in second.records()] == [False]


def test_server_secret_with_loose_permissions_is_refused(tmp_path: Path) -> None:
    KeyStore(tmp_path)
    os.chmod(tmp_path / "auth" / "hmac.key", 0o644)
    with pytest.raises(PermissionError):
        KeyStore(tmp_path)


@both_backends
def test_env_admin_key_installed_hashed_and_revocation_sticks(tmp_path: Path) -> None:
    env_key = "s3cret-from-the-operator-" + "x" * 20
    settings = ServiceSettings(data_dir=tmp_path, admin_key=env_key)
    access = open_access(settings)
    caller = access.authenticate(f"Bearer {env_key}")
    assert caller.id == "env-admin" and caller.has_scope("ingest") and caller.can_read("any")
    assert access.store is not None
    with access.store.db.read() as conn:
        assert env_key not in json.dumps([list(r) for r in conn.execute(select(api_keys))])
    KeyStore(tmp_path).revoke("env-admin")
    again = open_access(settings)  # restart with the same env var: stays revoked
    with pytest.raises(AuthError, match="revoked"):
        again.authenticate(f"Bearer {env_key}")
    with pytest.raises(ValueError):
        ServiceSettings(data_dir=tmp_path, admin_key="short")


def test_keyless_start_is_closed_not_open(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    access = open_access(ServiceSettings(data_dir=tmp_path))
    assert "inhouse keys create --name admin --scopes admin" in caplog.text
    with pytest.raises(AuthError):
        access.authenticate(None)
    disabled = open_access(ServiceSettings(data_dir=tmp_path, auth="disabled"))
    assert "INHOUSE_AUTH=disabled" in caplog.text
    assert disabled.authenticate(None).has_scope("admin")


def test_bearer_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    for bad in (None, "", "Basic abc", "Bearer", "Bearer "):
        with pytest.raises(AuthError):
            bearer_token(bad)


def test_rate_limit_per_verified_key(tmp_path: Path) -> None:
    settings = ServiceSettings(
        data_dir=tmp_path, security={"rate_limit": "3/minute", "auth_failure_limit": "2/minute"}
    )
    store = KeyStore(tmp_path)
    one, two = (store.create(n, ["query"], ["*"]).key for n in ("one", "two"))
    access = AccessControl(settings, store)
    for _ in range(3):
        access.authenticate(f"Bearer {one}")
    with pytest.raises(RateLimited) as err:
        access.authenticate(f"Bearer {one}")
    assert 1 <= err.value.detail["retry_after"] <= 60
    access.authenticate(f"Bearer {two}")  # another key has its own budget
    # a wrong secret claiming key one's id does not spend key one's budget
    for _ in range(2):
        with pytest.raises(AuthError):
            access.authenticate(f"Bearer {two[:-2]}xx", client="10.0.0.9")
    with pytest.raises(RateLimited):  # the guessing address is now slowed down
        access.authenticate(f"Bearer {two[:-2]}yy", client="10.0.0.9")
    # but a valid key from the same address (a shared proxy) still gets in
    access.authenticate(f"Bearer {two}", client="10.0.0.9")
    with pytest.raises(AuthError):  # and other addresses are unaffected
        access.authenticate(f"Bearer {two[:-2]}yy", client="10.0.0.10")


def test_scope_and_collection_rules() -> None:
    finance = Caller("k1", "fin", frozenset({"query"}), frozenset({"finance"}))
    admin = Caller("k2", "adm", frozenset({"admin"}), frozenset({"*"}))
    existing = ["finance", "hr", "ops"]
    assert searchable(finance, None, existing) == ["finance"]
    assert searchable(finance, ["finance"], existing) == ["finance"]
    with pytest.raises(Forbidden) as err:
        searchable(finance, ["finance", "hr"], existing)
    assert err.value.status == 403 and err.value.detail["collections"] == ["hr"]
    assert searchable(admin, None, existing) == existing
    require(finance, "query", "finance")
    with pytest.raises(Forbidden):
        require(finance, "ingest", "finance")
    with pytest.raises(Forbidden):
        require(finance, "query", "hr")
    assert parse_scopes(["reasoning:read", "query", "query"]) == ("query", "reasoning:read")
    assert parse_collections(["*"]) == ("*",)
    for bad_scopes in (["root"], []):
        with pytest.raises(ValueError):
            parse_scopes(bad_scopes)
    for bad_colls in (["*", "hr"], ["../hr"], []):
        with pytest.raises(ValueError):
            parse_collections(bad_colls)


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = run_inhouse(
        ["keys", "create", "--name", "ci", "--scopes", "query,ingest", "--collections", "hr"], data
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert KEY_RE.fullmatch(key) and "shown only this once" in made.stderr
    listed = run_inhouse(["keys", "list", "--json"], data)
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["scopes"], r["collections"], r["active"]) for r in rows] == [
        ("ci", ["query", "ingest"], ["hr"], True)
    ]
    assert key not in listed.stdout
    assert KeyStore(data).verify(key).id == rows[0]["key_id"]
    revoked = run_inhouse(["keys", "revoke", rows[0]["key_id"]], data)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    with pytest.raises(AuthError):
        KeyStore(data).verify(key)
    assert run_inhouse(["keys", "revoke", "nope"], data).returncode == 2
    bad = run_inhouse(["keys", "create", "--name", "x", "--scopes", "query"], data)
    assert bad.returncode == 2 and "--collections" in bad.stderr


def test_cli_audit_tail(tmp_path: Path) -> None:
    from service.auth.audit import AuditLog

    data = tmp_path / "data"
    log = AuditLog(data / "audit")
    for n in range(3):
        log.write(
            {
                "time": f"2026-11-2{n}T10:00:00.000+00:00",
                "request_id": f"r{n}",
                "key_id": "k1",
                "key_name": "fin",
                "method": "POST",
                "route": "/v1/query",
                "collections": ["finance"],
                "document_ids": ["d1"],
                "chunk_ids": ["d1:0", "d1:1"],
                "status": 200,
                "latency_ms": 12.5,
            }
        )
    as_json = run_inhouse(["audit", "tail", "-n", "2", "--json"], data)
    assert as_json.returncode == 0, as_json.stderr
    assert [json.loads(line)["request_id"] for line in as_json.stdout.splitlines()] == ["r1", "r2"]
    human = run_inhouse(["audit", "tail"], data)
    assert human.returncode == 0 and human.stdout.count("fin (k1)") == 3
    assert "collections=finance  documents=1 chunks=2" in human.stdout


def open_key_store(data_dir: Path) -> None:
    KeyStore(data_dir).close()


def test_processes_creating_the_key_store_together_share_one_secret(tmp_path: Path) -> None:
    failures = race(open_key_store, lambda n: tmp_path / f"data{n}", processes=4, rounds=60)
    assert failures == [], f"{len(failures)} failed opens; first:\n{failures[0]}"
    for n in range(60):
        assert (tmp_path / f"data{n}" / "auth" / "hmac.key").is_file()
        assert (tmp_path / f"data{n}" / "inhouse.sqlite3").is_file()
        assert not [p for p in (tmp_path / f"data{n}" / "auth").iterdir() if ".hmac.key." in p.name]
    key = KeyStore(tmp_path / "data0").create("carol", ["query"], ["*"]).key
    assert KeyStore(tmp_path / "data0").verify(key).name == "carol"


def test_replicas_sharing_postgresql_need_the_same_secret(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INHOUSE_DATABASE_URL", pg_url)
    one, two = tmp_path / "host1", tmp_path / "host2"
    key = KeyStore(one).create("dana", ["query"], ["*"]).key
    with pytest.raises(SecretMismatch, match="copy auth/hmac.key"):
        KeyStore(two)  # a second host that made its own secret: refused, not silently keyless
    (two / "auth" / "hmac.key").unlink()
    (two / "auth" / "hmac.key").write_bytes((one / "auth" / "hmac.key").read_bytes())
    os.chmod(two / "auth" / "hmac.key", 0o600)
    assert KeyStore(two).verify(key).name == "dana"  # a key made on one replica works on another


def test_async_checks_run_in_worker_threads(tmp_path: Path) -> None:
    """The key lookup and the rate-limit count (database round trips) leave the event
    loop's thread; the limit holds as in the blocking path."""
    import threading

    import anyio

    settings = ServiceSettings(data_dir=tmp_path, security={"rate_limit": "2/minute"})
    store = KeyStore(tmp_path)
    key = store.create("dora", ["query"], ["*"]).key
    access = AccessControl(settings, store)
    threads: list[str] = []
    verify, hit = store.verify, access.limiter.hit

    def spy_verify(token: str) -> Caller:
        threads.append(threading.current_thread().name)
        return verify(token)

    def spy_hit(identity: str) -> None:
        threads.append(threading.current_thread().name)
        hit(identity)

    store.verify = spy_verify  # type: ignore[method-assign]
    access.limiter.hit = spy_hit  # type: ignore[method-assign]

    async def request() -> tuple[str, str]:
        caller = await access.authenticate_async(f"Bearer {key}")
        return threading.current_thread().name, caller.name

    loop_thread, name = anyio.run(request)
    assert name == "dora"
    assert len(threads) == 2 and loop_thread not in threads
    anyio.run(request)
    with pytest.raises(RateLimited):
        anyio.run(request)
