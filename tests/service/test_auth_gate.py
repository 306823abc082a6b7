"""Issue 16: keys before bodies, upload slots, proxy headers, escaped logs and CLI output."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.api.main import create_app
from service.auth.gate import AuthGateMiddleware, ProxyHeadersMiddleware
from service.caller import Caller
from service.errors import AuthError
from service.settings import SecuritySettings, ServiceSettings
from service.textsafe import EscapingFormatter, escape_control

pytestmark = pytest.mark.anyio
CHUNK = b"-" * 65536


def asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_no_key_no_body_read(tmp_path: Path) -> None:
    """A 3 MiB multipart body to /v1/query without a key: 401 before the body is read."""
    app = create_app(
        ServiceSettings(data_dir=tmp_path / "data", auth="keys", demo_model={"use": "never"})
    )
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(48):
            pulled += 1
            yield CHUNK

    async with asgi_client(app) as http:
        resp = await http.post(
            "/v1/query",
            content=body(),
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthorized"
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert pulled <= 1, f"{pulled} chunks of the body were read before the 401"


class FakeAccess:
    """Keys are their own ids; anything else is refused."""

    enabled = True

    async def authenticate_async(
        self, authorization: str | None, client: str | None = None
    ) -> Caller:
        key = (authorization or "").removeprefix("Bearer ")
        if not key:
            raise AuthError("missing API key")
        return Caller(key, key, frozenset({"ingest"}), frozenset({"*"}))


def slot_app(release: anyio.Event, entered: list[str]) -> Starlette:
    async def upload(request: Request) -> JSONResponse:
        entered.append(request.headers["authorization"])
        await release.wait()
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/v1/collections/{name}/documents", upload, methods=["POST"])])
    app.add_middleware(AuthGateMiddleware, uploads_per_key=2, uploads_total=3)
    app.state.access = FakeAccess()
    return app


async def test_concurrent_uploads_are_bounded_per_key_and_in_total() -> None:
    release = anyio.Event()
    entered: list[str] = []
    app = slot_app(release, entered)
    path = "/v1/collections/main/documents"
    results: dict[str, int] = {}

    async with asgi_client(app) as http:

        async def post(name: str, key: str) -> None:
            resp = await http.post(path, headers={"Authorization": f"Bearer {key}"})
            results[name] = resp.status_code

        async def wait_entered(n: int) -> None:
            while len(entered) < n:
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as tg:
            tg.start_soon(post, "a1", "a")
            tg.start_soon(post, "a2", "a")
            tg.start_soon(post, "b1", "b")
            with anyio.fail_after(10):
                await wait_entered(3)
            third = await http.post(path, headers={"Authorization": "Bearer a"})
            assert third.status_code == 429
            assert third.json()["error"]["code"] == "too_many_uploads"
            assert third.headers["retry-after"]
            busy = await http.post(path, headers={"Authorization": "Bearer c"})
            assert busy.status_code == 503
            assert busy.json()["error"]["code"] == "uploads_busy"
            no_key = await http.post(path)
            assert no_key.status_code == 401
            release.set()
        again = await http.post(path, headers={"Authorization": "Bearer a"})
    assert results == {"a1": 200, "a2": 200, "b1": 200}
    assert again.status_code == 200  # slots are given back


async def client_of(request: Request) -> JSONResponse:
    return JSONResponse({"client": request.client.host if request.client else None})


def proxy_app(trusted: list[str]) -> Starlette:
    app = Starlette(routes=[Route("/who", client_of)])
    app.add_middleware(ProxyHeadersMiddleware, trusted=trusted)
    return app


async def who(app: Starlette, forwarded: str) -> str:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        resp = await http.get("/who", headers={"X-Forwarded-For": forwarded})
    return str(resp.json()["client"])


async def test_forwarded_for_only_from_configured_proxies() -> None:
    assert await who(proxy_app([]), "203.0.113.9") == "127.0.0.1"  # loopback is no proxy
    trusting = proxy_app(["127.0.0.1", "10.0.0.0/8"])
    assert await who(trusting, "203.0.113.9") == "203.0.113.9"
    assert await who(trusting, "198.51.100.1, 10.1.2.3") == "198.51.100.1"
    assert await who(trusting, "evil\r\nX-Injected: 1") == "127.0.0.1"  # not an address
    assert await who(trusting, "203.0.113.9, not-an-ip") == "127.0.0.1"


def test_trusted_proxies_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INHOUSE_SECURITY__TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16")
    assert ServiceSettings().security.trusted_proxies == ["10.0.0.1/32", "192.168.0.0/16"]
    monkeypatch.setenv("INHOUSE_SECURITY__TRUSTED_PROXIES", "proxy.local")
    with pytest.raises(ValueError):
        ServiceSettings()
    assert SecuritySettings().trusted_proxies == []  # default: the header is ignored


def test_serve_leaves_proxy_headers_and_access_log_to_the_app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """uvicorn's own proxy handling trusts loopback and its access log writes raw paths."""
    import uvicorn

    from service.cli import serve_cmd

    seen: dict[str, Any] = {}
    monkeypatch.setenv("INHOUSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("INHOUSE_AUTH", "disabled")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw))
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: None)
    args = argparse.Namespace(host="127.0.0.1", port=8000, log_level="info")
    assert serve_cmd.run(args) == 0
    assert seen["proxy_headers"] is False
    assert seen["access_log"] is False


def test_escape_control_shows_controls_as_escapes() -> None:
    hostile = "/v1/x\n2026-01-01 INFO forged\x1b[2J\u202etxt.exe\x00"
    shown = escape_control(hostile)
    assert "\n" not in shown and "\x1b" not in shown and "\u202e" not in shown
    assert shown == "/v1/x\\n2026-01-01 INFO forged\\x1b[2J\\u202etxt.exe\\x00"
    assert escape_control("a\nb\x07", keep_newlines=True) == "a\nb\\x07"
    assert escape_control("Grüße, 東京 👩\u200d💻") == "Grüße, 東京 👩\u200d💻"


def test_log_lines_cannot_be_forged() -> None:
    formatter = EscapingFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "request for %s", ("/x\nERROR forged\x1b[31m",), None
    )
    line = formatter.format(record)
    assert line.count("\n") == 0 and "\x1b" not in line
    assert line == "INFO request for /x\\nERROR forged\\x1b[31m"


def test_audit_tail_prints_one_escaped_line_per_entry(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.auth.audit import AuditLog
    from service.cli.audit_cmd import run_tail

    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping by rich
    entry = {
        "time": "2026-01-01T00:00:00.000+00:00",
        "request_id": "r1",
        "key_id": None,
        "key_name": None,
        "method": "GET",
        "route": "/v1/x\n2026-01-01T00:00:01  200  admin (k1)  GET /v1/forged\x1b]0;pwned\x07",
        "collections": [],
        "document_ids": [],
        "chunk_ids": [],
        "status": 404,
        "latency_ms": 1.0,
    }
    AuditLog(data_dir / "audit").write(entry)
    assert run_tail(argparse.Namespace(lines=5, json=False)) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\n2026-01-01T00:00:01" in out
    assert run_tail(argparse.Namespace(lines=5, json=True)) == 0
    assert json.loads(capsys.readouterr().out)["route"] == entry["route"]  # JSON: exact


def test_validators_refuse_a_trailing_newline(tmp_path: Path) -> None:
    from ingest.settings import validate_collection_name
    from service.api.routes.web import asset_path
    from service.auth.keys import ENV_KEY_ID, key_id_of
    from service.errors import NotFound
    from service.reasoning_log import new_request_id, request_day

    assert validate_collection_name("main") == "main"
    with pytest.raises(ValueError):
        validate_collection_name("main\n")
    request_id = new_request_id()
    assert request_day(request_id) is not None and request_day(request_id + "\n") is None
    key = "ih_0123456789ab_" + "A" * 43
    assert key_id_of(key) == "0123456789ab" and key_id_of(key + "\n") == ENV_KEY_ID
    with pytest.raises(NotFound):
        asset_path(tmp_path, "app.js\n")
