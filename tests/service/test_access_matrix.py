"""Access matrix: every kind of key and signed-in user x every route x collections -> status.

A real uvicorn on loopback serves the app with INHOUSE_AUTH=keys,oidc over a real Chroma index
holding three collections, each document carrying a marker word unique to its collection;
the Ollama test server answers. For every allowed call, the response and the prompt sent
to the model must contain no marker of a collection the key may not read (and must contain
the markers it asked for: the check can fail). Signed-in users (sessions opened through a
real OpenID provider, their groups mapped by a policy file) must behave exactly like the key
with the same grants: ``sess_fin`` like ``fin_query``, and so on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.index import document_id
from service.api.main import create_app
from service.auth.audit import AuditLog
from service.auth.keys import KeyStore
from service.settings import ServiceSettings
from tests.ingest.cli_helpers import run_inhouse
from tests.service import api_support
from tests.service.api_support import Doc, LiveService, build_index, parse_sse
from tests.service.oidc_support import Provider, oidc_settings, sign_in
from tests.service.ollama_server import OllamaTestServer, Script, start_server

MARKERS = {"hr": "quokkahr", "finance": "narwhalfin", "ops": "axolotlops"}
COLLECTIONS = tuple(MARKERS)
QUESTION = "What does the office policy say about the yearly budget and leave?"
DOCS = tuple(
    Doc(
        coll,
        f"{coll}/policy-{n}.md",
        f"{coll} policy {n}",
        [
            f"The {coll} office policy {n}: yearly budget and leave rules, code word {marker}."
            f" Ask the {coll} team about {marker} before planning the yearly budget."
        ],
    )
    for coll, marker in MARKERS.items()
    for n in (1, 2)
)
KEY_SPECS: dict[str, tuple[list[str], list[str]]] = {
    "revoked": (["query"], ["*"]),
    "fin_query": (["query"], ["finance"]),
    "hr_ingest": (["ingest"], ["hr"]),
    "auditor": (["query", "reasoning:read"], ["hr", "finance"]),
    "admin": (["admin"], ["*"]),
}
READABLE: dict[str, set[str]] = {
    "fin_query": {"finance"},
    "hr_ingest": {"hr"},
    "auditor": {"hr", "finance"},
    "admin": set(COLLECTIONS),
}
# Signed-in users: subject -> groups at the provider, and the key kind they must match.
SESSIONS: dict[str, tuple[list[str], str]] = {
    "sess_fin": (["finance-team"], "fin_query"),
    "sess_auditor": (["auditors", "hr-readers"], "auditor"),
    "sess_admin": (["it"], "admin"),
}
POLICY = """\
groups:
  finance-team: {collections: {finance: [read]}}
  hr-readers: {collections: {hr: [read]}}
  auditors: {collections: {finance: [read]}, scopes: [reasoning:read]}
  it: {scopes: [admin]}
"""
READABLE.update({kind: READABLE[like] for kind, (_, like) in SESSIONS.items()})
KINDS = ("none", "bad", "revoked", "fin_query", "hr_ingest", "auditor", "admin", *SESSIONS)
UNAUTH = {"none": 401, "bad": 401, "revoked": 401}


@dataclass
class Service:
    url: str
    data_dir: Path
    ollama: OllamaTestServer
    keys: dict[str, str | None]
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # kind -> (cookie, csrf)
    records: dict[str, str] = field(default_factory=dict)  # request and document ids by name
    keys_ids: dict[str, str] = field(default_factory=dict)
    app: Any = None
    audited: list[str] = field(default_factory=list)  # request ids of calls made

    def call(
        self, kind: str, method: str, path: str, body: Any = None, files: Any = None
    ) -> httpx.Response:
        key = self.keys.get(kind)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        cookies = {}
        if kind in self.sessions:
            cookies["inhouse_session"], headers["X-CSRF-Token"] = self.sessions[kind]
        self.ollama.reset()
        with httpx.Client(base_url=self.url, timeout=120, cookies=cookies) as client:
            if files is not None:
                resp = client.request(method, path, files=files, headers=headers)
            else:
                resp = client.request(method, path, json=body, headers=headers)
        self.audited.append(resp.headers.get("x-request-id", ""))
        return resp


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("matrix")
    data_dir, docs_root = root / "data", root / "docs"
    for doc in DOCS:  # real originals, so downloads can be served
        (docs_root / doc.path).parent.mkdir(parents=True, exist_ok=True)
        (docs_root / doc.path).write_text("\n\n".join(doc.pages))
    saved_root, api_support.ROOT = api_support.ROOT, str(docs_root)
    try:
        build_index(data_dir, DOCS)
    finally:
        api_support.ROOT = saved_root
    sources = root / "sources.yaml"
    for name in ("hr-src", "fin-src"):
        (root / name).mkdir()
    sources.write_text(
        "sources:\n"
        '  - {name: hr-docs, paths: [hr-src], collection: hr, schedule: "0 3 * * *",'
        " enabled: false}\n"
        '  - {name: fin-docs, paths: [fin-src], collection: finance, schedule: "0 3 * * *",'
        " enabled: false}\n"
    )
    store = KeyStore(data_dir)
    keys: dict[str, str | None] = {"none": None, "bad": "ih_0123456789ab_" + "A" * 43}
    keys_ids: dict[str, str] = {}
    for kind, (scopes, colls) in KEY_SPECS.items():
        new = store.create(kind, scopes, colls)
        keys[kind], keys_ids[kind] = new.key, new.record.key_id
    store.revoke(store.verify(str(keys["revoked"])).id)
    ollama = start_server(Script.instant("The policy is in the sources [1].", "thinking " * 5))
    provider = Provider()
    (root / "policy.yaml").write_text(POLICY)
    settings = ServiceSettings(
        data_dir=data_dir,
        ollama_host=ollama.url,
        auth="keys,oidc",
        oidc=oidc_settings(provider),
        policy=root / "policy.yaml",
        demo_model={"use": "never"},
        sources=sources,
        embedded_worker=False,
        security={"rate_limit": "10000/minute", "auth_failure_limit": "10000/minute"},
    )
    try:
        app = create_app(settings)
        with LiveService(app) as live:
            svc = Service(live.url, data_dir, ollama, keys, keys_ids=keys_ids, app=app)
            for kind, (groups, _) in SESSIONS.items():
                provider.set_user(kind, {"name": kind, "groups": groups})
                user = sign_in(live.url, kind)
                svc.sessions[kind] = (user.token, user.csrf)
                svc.keys_ids[kind] = f"user:{kind}"
                user.client.close()
            for coll in COLLECTIONS:
                svc.records[f"doc_{coll}"] = document_id(
                    coll, str(docs_root), f"{coll}/policy-1.md"
                )
            for coll in ("hr", "ops"):  # reasoning records whose collections differ
                resp = svc.call(
                    "admin", "POST", "/v1/query", {"question": QUESTION, "collections": [coll]}
                )
                assert resp.status_code == 200, resp.text
                svc.records[coll] = resp.json()["request_id"]
            resp = svc.call(  # the auditor's own request: only it and admins read the record
                "auditor", "POST", "/v1/query", {"question": QUESTION, "collections": ["hr"]}
            )
            assert resp.status_code == 200, resp.text
            svc.records["own"] = resp.json()["request_id"]
            yield svc
    finally:
        ollama.stop()
        provider.stop()


def forbidden_markers(kind: str) -> set[str]:
    return {MARKERS[c] for c in COLLECTIONS if c not in READABLE.get(kind, set())}


def assert_no_crossing(svc: Service, kind: str, resp: httpx.Response, wanted: set[str]) -> None:
    """No forbidden marker in the response or the prompt; every wanted marker present."""
    seen_by_model = json.dumps([r.body for r in svc.ollama.chat_requests()])
    for text, where in ((resp.text, "response"), (seen_by_model, "model prompt")):
        leaked = {m for m in forbidden_markers(kind) if m in text}
        assert not leaked, f"{kind}: {leaked} leaked into the {where}"
    for coll in wanted:
        assert MARKERS[coll] in resp.text, f"{kind}: nothing from {coll} in {resp.text[:300]}"


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: Any
    expect: dict[str, int | tuple[int, ...]]  # per key kind; missing kinds of UNAUTH: 401
    searched: dict[str, set[str]] = field(default_factory=dict)  # kind -> collections hit
    files: Any = None


def q(**extra: Any) -> dict[str, Any]:
    return {"question": QUESTION, "top_k": 6, **extra}


def chat(**extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": QUESTION}], "top_k": 6, **extra}


ALL_OK = {"fin_query": 200, "hr_ingest": 403, "auditor": 200, "admin": 200}
DEFAULT_SEARCH = {"fin_query": {"finance"}, "auditor": {"hr", "finance"}, "admin": set(MARKERS)}
CASES = [
    Case("healthz", "GET", "/healthz", None, {k: 200 for k in KINDS}),
    Case("readyz", "GET", "/readyz", None, {k: 200 for k in KINDS}),
    Case("query", "POST", "/v1/query", q(), ALL_OK, DEFAULT_SEARCH),
    Case(
        "query-hr",
        "POST",
        "/v1/query",
        q(collections=["hr"]),
        {"fin_query": 403, "hr_ingest": 403, "auditor": 200, "admin": 200},
        {"auditor": {"hr"}, "admin": {"hr"}},
    ),
    Case(
        "query-finance-ops",
        "POST",
        "/v1/query",
        q(collections=["finance", "ops"]),
        {"fin_query": 403, "hr_ingest": 403, "auditor": 403, "admin": 200},
        {"admin": {"finance", "ops"}},
    ),
    Case(
        "query-stream",
        "POST",
        "/v1/query",
        q(stream=True, include_reasoning=True),
        ALL_OK,
        DEFAULT_SEARCH,
    ),
    Case(
        "query-stream-ops",
        "POST",
        "/v1/query",
        q(stream=True, collections=["ops"]),
        {"fin_query": 403, "hr_ingest": 403, "auditor": 403, "admin": 200},
        {"admin": {"ops"}},
    ),
    Case("chat", "POST", "/v1/chat/completions", chat(), ALL_OK, DEFAULT_SEARCH),
    Case(
        "chat-ops",
        "POST",
        "/v1/chat/completions",
        chat(collections=["ops"]),
        {"fin_query": 403, "hr_ingest": 403, "auditor": 403, "admin": 200},
        {"admin": {"ops"}},
    ),
    Case("chat-stream", "POST", "/v1/chat/completions", chat(stream=True), ALL_OK, DEFAULT_SEARCH),
    Case("collections", "GET", "/v1/collections", None, ALL_OK),
    Case(  # an admin's request: another key with reasoning:read on hr does not see it
        "reasoning-hr",
        "GET",
        "/v1/reasoning/{hr}",
        None,
        {"fin_query": 403, "hr_ingest": 403, "auditor": 404, "admin": 200},
    ),
    Case(
        "reasoning-own",
        "GET",
        "/v1/reasoning/{own}",
        None,
        # the auditor key's own record: another user with the same grants may not read it
        {"fin_query": 403, "hr_ingest": 403, "auditor": 200, "admin": 200, "sess_auditor": 404},
    ),
    Case(
        "reasoning-ops",
        "GET",
        "/v1/reasoning/{ops}",
        None,
        {"fin_query": 403, "hr_ingest": 403, "auditor": 404, "admin": 200},
    ),
]


def upload(coll: str) -> Any:
    text = f"Uploaded {coll} note about the yearly budget, code word {MARKERS[coll]}."
    return {"files": (f"{coll}-note.md", text.encode(), "text/markdown")}


CASES += [
    Case("me", "GET", "/v1/me", None, {k: 200 for k in READABLE}),
    Case(
        "download-finance",
        "GET",
        "/v1/documents/{doc_finance}/file",
        None,
        {"fin_query": 200, "hr_ingest": 403, "auditor": 200, "admin": 200},
        {"fin_query": {"finance"}, "auditor": {"finance"}, "admin": {"finance"}},
    ),
    Case(
        "download-ops",
        "GET",
        "/v1/documents/{doc_ops}/file",
        None,
        {"fin_query": 404, "hr_ingest": 403, "auditor": 404, "admin": 200},
        {"admin": {"ops"}},
    ),
    Case(
        "upload-hr",
        "POST",
        "/v1/collections/hr/documents",
        None,
        {"fin_query": 403, "hr_ingest": 200, "auditor": 403, "admin": 200},
        files=upload("hr"),
    ),
    Case(
        "upload-finance",
        "POST",
        "/v1/collections/finance/documents",
        None,
        {"fin_query": 403, "hr_ingest": 403, "auditor": 403, "admin": 200},
        files=upload("finance"),
    ),
    Case("sources", "GET", "/v1/sources", None, {k: 200 for k in READABLE}),
    Case(
        "reindex-hr",
        "POST",
        "/v1/sources/hr-docs/reindex",
        None,
        {"fin_query": 403, "hr_ingest": 202, "auditor": 403, "admin": (202, 409)},
    ),
    Case(
        "reindex-finance",
        "POST",
        "/v1/sources/fin-docs/reindex",
        None,
        {"fin_query": 403, "hr_ingest": 404, "auditor": 403, "admin": 202},  # 404 as unknown
    ),
    Case(
        "reindex-unknown",
        "POST",
        "/v1/sources/no-such-source/reindex",
        None,
        {"fin_query": 403, "hr_ingest": 404, "auditor": 403, "admin": 404},
    ),
]
ADMIN_ONLY = {"fin_query": 403, "hr_ingest": 403, "auditor": 403, "admin": 200}
KEY_ONLY = {**ADMIN_ONLY, "sess_admin": 403}  # key management: never a browser session
EVERYONE = {k: 200 for k in KINDS}
CASES += [
    Case("admin-failures", "GET", "/v1/admin/failures", None, ADMIN_ONLY),
    Case("admin-keys", "GET", "/v1/admin/keys", None, KEY_ONLY),
    Case(
        "admin-key-create",
        "POST",
        "/v1/admin/keys",
        {"name": "matrix", "scopes": ["query"], "collections": ["hr"]},
        {**KEY_ONLY, "admin": 201},
    ),
    Case(
        "admin-key-revoke",
        "DELETE",
        "/v1/admin/keys/000000000000",
        None,
        {**KEY_ONLY, "admin": 404},
    ),
    Case("admin-sessions", "GET", "/v1/admin/sessions", None, ADMIN_ONLY),
    Case(
        "admin-session-end",
        "DELETE",
        "/v1/admin/sessions/nosuchref",
        None,
        {**ADMIN_ONLY, "admin": 404},
    ),
    Case(  # Prometheus: the metrics scope (admin holds every scope)
        "metrics",
        "GET",
        "/metrics",
        None,
        {"fin_query": 403, "hr_ingest": 403, "auditor": 403, "admin": 200},
    ),
    Case("auth-providers", "GET", "/auth/providers", None, EVERYONE),
    Case("auth-login", "GET", "/auth/login", None, {k: 302 for k in KINDS}),
    Case("auth-callback", "GET", "/auth/callback?state=x&code=y", None, {k: 401 for k in KINDS}),
]
SOURCE_COLLECTIONS = {"hr-docs": "hr", "fin-docs": "finance"}


def expected(case: Case, kind: str) -> tuple[int, ...]:
    like = kind if kind in case.expect or kind not in SESSIONS else SESSIONS[kind][1]
    want = case.expect.get(like, UNAUTH.get(like, 0))
    wanted = want if isinstance(want, tuple) else (want,)
    if kind in SESSIONS and 202 in wanted:
        wanted = (*wanted, 409)  # the key of the same grants may have started that run
    return wanted


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_matrix(service: Service, case: Case, kind: str) -> None:
    path = case.path.format(**service.records)
    resp = service.call(kind, case.method, path, case.body, case.files)
    wanted = expected(case, kind)
    assert resp.status_code in wanted, (
        f"{case.name} as {kind}: {resp.status_code} {resp.text[:400]}"
    )
    want = resp.status_code
    if resp.headers.get("content-type", "").startswith("text/html"):  # sign-in pages
        assert "Sign-in failed" in resp.text and not service.ollama.chat_requests()
        return
    if want >= 400:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "reindex_running"}
        assert resp.json()["error"]["code"] == code[want]
        assert not service.ollama.chat_requests(), "a refused call reached the model"
        if want == 401:
            assert resp.headers["www-authenticate"].startswith("Bearer")
        return
    if kind in READABLE:
        like = SESSIONS[kind][1] if kind in SESSIONS else kind
        assert_no_crossing(service, kind, resp, case.searched.get(like, set()))
    if case.name == "readyz":
        checks = resp.json()["checks"]
        assert set(checks) == {"index", "model_server", "model"}
        if kind == "admin":
            assert all("detail" in c for c in checks.values())
        else:  # no key or not an admin: status and check names only
            assert all(c == {"ok": True} for c in checks.values()), checks
            assert service.ollama.url.split("//")[-1] not in resp.text
    if case.name == "query-stream":
        assert resp.headers["cache-control"] == "no-store"
        events = [name for name, _ in parse_sse(resp.text)]
        assert events[0] == "sources" and events[-1] == "done"
        reasons = ("auditor", "admin", "sess_auditor", "sess_admin")
        assert ("reasoning" in events) == (kind in reasons)
    if case.name == "collections":
        names = {c["name"] for c in resp.json()["collections"]}
        assert names == READABLE[kind]
    if case.name.startswith("reasoning"):
        assert resp.json()["request_id"] == path.rsplit("/", 1)[-1]
    if case.name == "me":
        assert resp.json()["id"] == service.keys_ids[kind]
    if case.name.startswith("upload"):
        (stored,) = resp.json()["files"]
        assert stored["status"] in ("indexed", "unchanged"), stored
    if case.name == "sources":
        listed = {SOURCE_COLLECTIONS[s["name"]] for s in resp.json()["sources"]}
        assert listed == READABLE[kind] & set(SOURCE_COLLECTIONS.values())
        for source in resp.json()["sources"]:  # server folders: admin and ingest keys only
            shown = kind in ("admin", "hr_ingest", "sess_admin")
            assert (source["paths"] is not None) == shown, (kind, source)
            assert "/" not in json.dumps(source["paths"]) or shown


def audit_line(service: Service, request_id: str) -> dict[str, Any]:
    """The audit entry of a request (written just after its last byte: allow a moment)."""
    deadline = time.monotonic() + 10
    while True:
        found = [
            e
            for e in AuditLog(service.data_dir / "audit").entries()
            if e["request_id"] == request_id
        ]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.02)


def test_audit_lines_name_key_collections_and_no_text(service: Service) -> None:
    assert service.call("bad", "GET", "/v1/collections").status_code == 401
    resp = service.call("fin_query", "POST", "/v1/query", q())
    assert resp.status_code == 200
    line = audit_line(service, resp.json()["request_id"])
    entries = list(AuditLog(service.data_dir / "audit").entries())
    assert (line["key_name"], line["route"], line["status"]) == ("fin_query", "/v1/query", 200)
    assert line["collections"] == ["finance"]
    assert line["document_ids"] and line["chunk_ids"]
    cited = {c["document_id"] for c in resp.json()["citations"]}
    assert cited <= set(line["document_ids"])
    raw = "\n".join(json.dumps(e) for e in entries)
    assert QUESTION not in raw and not any(m in raw for m in MARKERS.values())
    assert "The policy is in the sources" not in raw
    logged = {e["request_id"] for e in entries}
    assert set(filter(None, service.audited)) <= logged  # every call made here left a line
    refused = [e for e in entries if e["status"] == 401]
    assert refused and all(e["key_id"] is None for e in refused)
    download = service.call(
        "fin_query", "GET", f"/v1/documents/{service.records['doc_finance']}/file"
    )
    assert download.status_code == 200
    line = audit_line(service, download.headers["x-request-id"])
    assert line["route"] == "/v1/documents/{document_id}/file"
    assert (line["collections"], line["document_ids"]) == (
        ["finance"],
        [service.records["doc_finance"]],
    )


def test_revocation_via_cli_applies_to_the_running_service(service: Service) -> None:
    new = KeyStore(service.data_dir).create("short-lived", ["query"], ["hr"])
    service.keys["short"] = new.key
    assert service.call("short", "GET", "/v1/collections").status_code == 200
    done = run_inhouse(["keys", "revoke", new.record.key_id], service.data_dir)
    assert done.returncode == 0, done.stderr
    resp = service.call("short", "GET", "/v1/collections")
    assert resp.status_code == 401 and "revoked" in resp.json()["error"]["message"]


WEB_PAGE_ROUTES = {("GET", "/"), ("GET", "/static/{relative:path}")}  # no data: no key
# Sign-out acts on the caller's own session only (and would end the matrix's sessions):
# tests/service/test_oidc_signin.py covers it, CSRF included.
OWN_SESSION_ROUTES = {("POST", "/auth/logout")}


def test_every_route_is_in_the_matrix(service: Service) -> None:
    """A new route fails here until the matrix says who may call it."""
    from fastapi.routing import APIRoute

    def walk(routes: list[Any]) -> Iterator[Any]:  # FastAPI wraps included routers
        for route in routes:
            if hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)
            else:
                yield route

    routes = [r for r in walk(service.app.routes) if isinstance(r, APIRoute)]
    assert len(routes) >= 10
    declared = {(m, r.path) for r in routes for m in r.methods if m != "HEAD"}
    covered = {
        (case.method, route.path)
        for case in CASES
        for route in routes
        if case.method in route.methods
        and route.path_regex.match(case.path.format(**service.records).split("?")[0])
    }
    assert declared - covered == WEB_PAGE_ROUTES | OWN_SESSION_ROUTES
    for route in routes:
        if (("GET", route.path)) in WEB_PAGE_ROUTES:
            assert not route.include_in_schema
