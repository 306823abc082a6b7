"""Company sign-in end to end: a real OpenID provider (oidc-provider-mock, its own process on
loopback), the real service (uvicorn, INHOUSE_AUTH=keys,oidc, a policy file), a real index
and the Ollama test server. Sessions' clocks are injected, so timeouts and the group
refresh are tested without waiting."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.api.deps import get_retriever
from service.api.main import create_app
from service.auth.audit import AuditLog
from service.auth.keys import KeyStore
from service.auth.signin import SignIn
from service.settings import ServiceSettings
from tests.service.api_support import LiveService, build_index, make_retriever
from tests.service.oidc_support import Provider, Session, authorize, begin, oidc_settings, sign_in
from tests.service.ollama_server import OllamaTestServer, Script, start_server

POLICY = """\
everyone:
  collections: {main: [read]}
groups:
  finance:
    collections: {finance: [read]}
  auditors:
    scopes: [reasoning:read]
  it:
    scopes: [admin]
users:
  carol@example.com:
    collections: {finance: [read, upload]}
"""
PAYROLL_WORDS = "25th of every month"  # only in the finance collection
QUESTION = {"question": "When are salaries paid and how much vacation do employees get?"}


class Clock:
    """An injected clock: starts at the real time, moves only when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    url: str
    provider: Provider
    ollama: OllamaTestServer
    signin: SignIn
    clock: Clock
    data_dir: Path
    admin_key: str

    def user(self, sub: str, **claims: Any) -> Session:
        """Sign ``sub`` in (the clock back to the real time: the provider's tokens use it)."""
        self.clock.now = time.time()
        self.provider.set_user(sub, {"name": sub.title(), "email": f"{sub}@example.com", **claims})
        return sign_in(self.url, sub)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("oidc")
    data_dir = root / "data"
    build_index(data_dir)
    (root / "policy.yaml").write_text(POLICY)
    admin_key = KeyStore(data_dir).create("ops", ["admin"], ["*"]).key
    provider = Provider()
    ollama = start_server(Script.instant("Salaries are paid on the 25th [1].", "thinking"))
    clock = Clock()
    settings = ServiceSettings(
        data_dir=data_dir,
        ollama_host=ollama.url,
        auth="keys,oidc",
        oidc=oidc_settings(provider, groups_refresh_s=900, session_idle_minutes=30),
        policy=root / "policy.yaml",
        demo_model={"use": "never"},
        security={"rate_limit": "10000/minute"},
    )
    try:
        app = create_app(settings)
        signin: SignIn = app.state.signin
        signin.clock = clock
        for p in signin.providers.values():
            p.clock = clock
        retriever = make_retriever(data_dir)
        app.dependency_overrides[get_retriever] = lambda: retriever
        with LiveService(app) as live:
            yield Env(live.url, provider, ollama, signin, clock, data_dir, admin_key)
    finally:
        ollama.stop()
        provider.stop()


def collections_of(session: Session, url: str) -> set[str]:
    resp = session.client.get(f"{url}/v1/collections")
    assert resp.status_code == 200, resp.text
    return {c["name"] for c in resp.json()["collections"]}


def test_sign_in_names_the_user_and_grants_what_the_groups_say(env: Env) -> None:
    alice = env.user("alice", groups=["finance", "auditors"])
    me = alice.me
    assert (me["id"], me["name"], me["kind"]) == ("user:alice", "Alice", "session")
    assert me["collections"] == ["finance", "main"] and me["reasoning"] is True
    assert me["groups"] == ["finance", "auditors"] and me["email"] == "alice@example.com"
    cookie = next(c for c in alice.client.cookies.jar if c.name == "inhouse_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/"
    assert collections_of(alice, env.url) == {"main", "finance"}

    bob = env.user("bob", groups=[])
    assert bob.me["collections"] == ["main"] and bob.me["reasoning"] is False
    assert collections_of(bob, env.url) == {"main"}
    env.ollama.reset()
    resp = bob.client.post(f"{env.url}/v1/query", json=QUESTION, headers=bob.headers())
    assert resp.status_code == 200, resp.text
    prompt = json.dumps([r.body for r in env.ollama.chat_requests()])
    assert PAYROLL_WORDS not in resp.text and PAYROLL_WORDS not in prompt
    assert "25 days of paid vacation" in prompt  # the check can fail: main was searched
    resp = bob.client.post(
        f"{env.url}/v1/query", json={**QUESTION, "collections": ["finance"]}, headers=bob.headers()
    )
    assert resp.status_code == 403 and PAYROLL_WORDS not in resp.text


def test_upload_right_applies_to_its_collection_only(env: Env) -> None:
    carol = env.user("carol", groups=[])
    assert carol.me["writable"] == ["finance"] and carol.me["ingest"] is True
    files = {"files": ("note.md", b"Carol's note about the payroll run.", "text/markdown")}
    resp = carol.client.post(
        f"{env.url}/v1/collections/main/documents", files=files, headers=carol.headers()
    )
    assert resp.status_code == 403, resp.text


def test_audit_and_reasoning_logs_name_the_user(env: Env) -> None:
    dave = env.user("dave", groups=["auditors"], name="Dave Auditor")
    resp = dave.client.post(f"{env.url}/v1/query", json=QUESTION, headers=dave.headers())
    assert resp.status_code == 200
    request_id = resp.json()["request_id"]
    deadline = time.monotonic() + 10
    line: dict[str, Any] = {}
    while not line and time.monotonic() < deadline:
        entries = AuditLog(env.data_dir / "audit").entries()
        found = [e for e in entries if e["request_id"] == request_id]
        line = found[0] if found else {}
        time.sleep(0.02)
    assert (line["key_id"], line["key_name"]) == ("user:dave", "Dave Auditor")
    record = dave.client.get(f"{env.url}/v1/reasoning/{request_id}")
    assert record.status_code == 200
    assert (record.json()["caller_id"], record.json()["caller_name"]) == (
        "user:dave",
        "Dave Auditor",
    )


def test_group_removed_at_the_provider_loses_access_by_the_refresh(env: Env) -> None:
    erin = env.user("erin", groups=["finance"])
    assert collections_of(erin, env.url) == {"main", "finance"}
    env.provider.set_user("erin", {"name": "Erin", "groups": []})
    env.clock.advance(899)  # within the interval: the groups read at sign-in still hold
    assert collections_of(erin, env.url) == {"main", "finance"}
    env.clock.advance(2)  # past 900 s: the next request re-reads them at the provider
    assert collections_of(erin, env.url) == {"main"}
    resp = erin.client.post(
        f"{env.url}/v1/query", json={**QUESTION, "collections": ["finance"]}, headers=erin.headers()
    )
    assert resp.status_code == 403 and PAYROLL_WORDS not in resp.text
    assert erin.client.get(f"{env.url}/v1/me").json()["groups"] == []


def test_user_disabled_at_the_provider_is_signed_out_by_the_refresh(env: Env) -> None:
    frank = env.user("frank", groups=["finance"])
    env.provider.revoke_tokens("frank")
    env.clock.advance(901)
    resp = frank.client.get(f"{env.url}/v1/collections")
    assert resp.status_code == 401
    assert "no longer valid at the identity provider" in resp.json()["error"]["message"]
    assert frank.client.get(f"{env.url}/v1/me").status_code == 401  # ended for good


def test_idle_and_absolute_timeouts(env: Env) -> None:
    gina = env.user("gina", groups=[])
    env.clock.advance(29 * 60)
    assert gina.client.get(f"{env.url}/v1/me").status_code == 200
    env.clock.advance(31 * 60)
    resp = gina.client.get(f"{env.url}/v1/me")
    assert resp.status_code == 401 and "inactivity" in resp.json()["error"]["message"]
    hank = env.user("hank", groups=[])
    hours = 0.0
    for _ in range(30):  # busy all day, never idle: the 12 h limit still applies
        env.clock.advance(29 * 60)
        hours += 29 / 60
        resp = hank.client.get(f"{env.url}/v1/me")
        if resp.status_code != 200:
            break
    assert resp.status_code == 401 and "maximum length" in resp.json()["error"]["message"]
    assert 12 <= hours < 12.5


def test_sign_out_ends_the_session_here_and_at_the_provider(env: Env) -> None:
    ivan = env.user("ivan", groups=["finance"])
    stolen = ivan.token
    refused = ivan.client.post(f"{env.url}/auth/logout")  # no CSRF token: not even sign-out
    assert refused.status_code == 403
    resp = ivan.client.post(f"{env.url}/auth/logout", headers=ivan.headers())
    assert resp.status_code == 200 and resp.json()["signed_out"] is True
    redirect = httpx.URL(resp.json()["redirect"])
    assert str(redirect).startswith(f"{env.provider.url}/oauth2/end_session")
    assert redirect.params["id_token_hint"] and redirect.params["client_id"] == "inhouse-test"
    # The cookie of a signed-out user, replayed by someone else, opens nothing.
    with httpx.Client(cookies={"inhouse_session": stolen}) as other:
        resp = other.get(f"{env.url}/v1/collections")
        assert resp.status_code == 401 and PAYROLL_WORDS not in resp.text
        assert "ivan" not in resp.text.lower()


def test_cross_origin_and_tokenless_state_changes_are_refused(env: Env) -> None:
    judy = env.user("judy", groups=["finance"])
    env.ollama.reset()
    evil = {"Origin": "http://evil.example", **judy.headers()}
    for headers in (evil, {}, {"X-CSRF-Token": "guess"}):
        resp = judy.client.post(f"{env.url}/v1/query", json=QUESTION, headers=headers)
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"]["detail"]["reason"] == "csrf"
        assert PAYROLL_WORDS not in resp.text
    assert not env.ollama.chat_requests(), "a refused request reached the model"
    ok = judy.client.post(
        f"{env.url}/v1/query", json=QUESTION, headers={"Origin": env.url, **judy.headers()}
    )
    assert ok.status_code == 200


def test_state_mismatch_and_replayed_callbacks_are_refused(env: Env) -> None:
    env.provider.set_user("kim", {"groups": []})
    with httpx.Client(timeout=60) as victim, httpx.Client(timeout=60) as attacker:
        # Login CSRF: a callback started in another browser (no matching login cookie).
        callback = authorize(attacker, begin(attacker, env.url), "kim")
        resp = victim.get(callback)
        assert resp.status_code == 401 and "state mismatch" in resp.text
        assert "inhouse_session" not in resp.cookies
        # A tampered state.
        callback = authorize(victim, begin(victim, env.url), "kim")
        resp = victim.get(callback.replace("state=", "state=x"))
        assert resp.status_code == 401 and "state mismatch" in resp.text
    with httpx.Client(timeout=60) as browser:
        callback = authorize(browser, begin(browser, env.url), "kim")
        login_cookie = browser.cookies.get("inhouse_login")
        assert browser.get(callback).status_code == 303
        browser.cookies.set("inhouse_login", str(login_cookie), path="/auth")
        replay = browser.get(callback)  # same state, same code, same nonce: used up
        assert replay.status_code == 401 and "already used" in replay.text


def test_missing_groups_claim_refuses_sign_in(env: Env) -> None:
    env.provider.set_user("lena", {"name": "Lena"})  # the provider sends no groups claim
    with httpx.Client(timeout=60) as browser:
        resp = browser.get(authorize(browser, begin(browser, env.url), "lena"))
        assert resp.status_code == 403
        assert "sent no &#x27;groups&#x27; claim" in resp.text
        assert "inhouse_session" not in resp.cookies
        assert browser.get(f"{env.url}/v1/me").status_code == 401


def test_keys_keep_working_and_are_refused_as_cookies(env: Env) -> None:
    headers = {"Authorization": f"Bearer {env.admin_key}"}
    assert httpx.get(f"{env.url}/v1/collections", headers=headers).status_code == 200
    with httpx.Client(cookies={"inhouse_session": env.admin_key}) as sneaky:
        resp = sneaky.get(f"{env.url}/v1/collections")
        assert resp.status_code == 401 and "never in a cookie" in resp.json()["error"]["message"]


def test_key_management_takes_keys_not_sessions(env: Env) -> None:
    root = env.user("root", groups=["it"])
    assert root.me["scopes"] == ["admin", "query"] and root.me["collections"] == ["*"]
    resp = root.client.get(f"{env.url}/v1/admin/keys")
    assert resp.status_code == 403 and resp.json()["error"]["detail"]["reason"] == "key_only"
    resp = root.client.post(
        f"{env.url}/v1/admin/keys",
        json={"name": "x", "scopes": ["admin"]},
        headers=root.headers(),
    )
    assert resp.status_code == 403
    headers = {"Authorization": f"Bearer {env.admin_key}"}
    created = httpx.post(
        f"{env.url}/v1/admin/keys",
        json={"name": "script", "scopes": ["query"], "collections": ["main"]},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    new_key = created.json()["key"]
    assert httpx.get(f"{env.url}/v1/me", headers={"Authorization": f"Bearer {new_key}"}).json()[
        "collections"
    ] == ["main"]
    listed = httpx.get(f"{env.url}/v1/admin/keys", headers=headers).json()["keys"]
    assert new_key not in json.dumps(listed)
    key_id = created.json()["record"]["key_id"]
    assert httpx.delete(f"{env.url}/v1/admin/keys/{key_id}", headers=headers).status_code == 200
    assert (
        httpx.get(f"{env.url}/v1/me", headers={"Authorization": f"Bearer {new_key}"}).status_code
        == 401
    )


def test_admin_lists_and_ends_sessions(env: Env) -> None:
    root = env.user("root2", groups=["it"])
    mia = env.user("mia", groups=[])
    listed = root.client.get(f"{env.url}/v1/admin/sessions").json()["sessions"]
    mine = [s for s in listed if s["subject"] == "mia"]
    assert mine and "token" not in json.dumps(listed).lower()
    assert [s["current"] for s in listed if s["subject"] == "root2"] == [True]
    ref = mine[-1]["ref"]
    resp = root.client.delete(f"{env.url}/v1/admin/sessions/{ref}", headers=root.headers())
    assert resp.status_code == 200
    assert mia.client.get(f"{env.url}/v1/me").status_code == 401
    refused = mia.client.get(f"{env.url}/v1/admin/sessions")
    assert refused.status_code == 401


def test_admin_failures_by_reason_name_the_files(env: Env) -> None:
    from ingest.manifest import Manifest
    from ingest.settings import IngestSettings

    manifest = Manifest.open(IngestSettings(data_dir=env.data_dir))
    try:
        for path, code in (("a.pdf", "encrypted"), ("b.pdf", "encrypted"), ("c.xlsx", "timeout")):
            manifest.record_failure(
                doc_id=f"fail-{path}", collection="finance", root="/docs", path=path, size=1,
                mtime_ns=0, content_hash=None, code=code, message=f"{code}: {path}",
            )  # fmt: skip
    finally:
        manifest.close()
    headers = {"Authorization": f"Bearer {env.admin_key}"}
    body = httpx.get(f"{env.url}/v1/admin/failures", headers=headers).json()
    assert [(r["code"], r["count"]) for r in body["reasons"]] == [("encrypted", 2), ("timeout", 1)]
    assert [f["path"] for f in body["reasons"][0]["files"]] == ["a.pdf", "b.pdf"]
    nobody = env.user("nora", groups=["finance"])  # reads finance, but is no admin
    assert nobody.client.get(f"{env.url}/v1/admin/failures").status_code == 403
