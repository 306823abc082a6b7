"""Hardening middleware, upload names and the audit log, on a small Starlette app."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from ingest.index import Hit
from service.auth import audit
from service.auth.audit import AuditLog, AuditMiddleware
from service.auth.hardening import (
    CSP,
    BodyLimitMiddleware,
    SecurityHeadersMiddleware,
    add_cors,
    safe_upload_name,
    upload_path,
)
from service.caller import Caller

pytestmark = pytest.mark.anyio


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"bytes": len(body)})


async def search(request: Request) -> StreamingResponse:
    audit.note_caller(Caller("k1", "fin", frozenset({"query"}), frozenset({"finance"})))
    hits = [
        Hit("d1:00000:aa", "SECRET TEXT", {"document_id": "d1"}, 0.9),
        Hit("d1:00001:bb", "SECRET TEXT", {"document_id": "d1"}, 0.8),
    ]
    audit.note_search(["finance"], hits)

    async def body() -> AsyncIterator[bytes]:
        yield b"event: token\ndata: SECRET ANSWER\n\n"
        yield b"event: done\ndata: {}\n\n"

    return StreamingResponse(body(), media_type="text/event-stream")


def make_app(tmp_path: Path, origins: list[str] | None = None) -> Starlette:
    app = Starlette(
        routes=[
            Route("/v1/echo", echo, methods=["POST"]),
            Route("/v1/collections/{name}/documents", echo, methods=["POST"]),
            Route("/v1/search/{name}", search, methods=["GET"]),
        ]
    )
    add_cors(app, origins or [])
    app.add_middleware(BodyLimitMiddleware, json_bytes=1000, upload_bytes=5000)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(
        AuditMiddleware, log=AuditLog(tmp_path / "audit"), new_request_id=lambda: "r1"
    )
    return app


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_body_limits_json_chunked_and_upload_route(tmp_path: Path) -> None:
    async with client(make_app(tmp_path)) as http:
        assert (await http.post("/v1/echo", content=b"x" * 1000)).json() == {"bytes": 1000}
        big = await http.post("/v1/echo", content=b"x" * 1001)
        assert big.status_code == 413
        assert big.json()["error"]["code"] == "payload_too_large"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
            for _ in range(10):
                yield b"y" * 300

        streamed = await http.post("/v1/echo", content=chunks())
        assert streamed.status_code == 413 and streamed.json()["error"]["code"] == (
            "payload_too_large"
        )
        uploads = "/v1/collections/main/documents"
        upload = await http.post(uploads, files={"file": ("a.txt", b"z" * 4000)})
        assert upload.status_code == 200
        too_big = await http.post(uploads, files={"file": ("a.txt", b"z" * 80_000)})
        assert too_big.status_code == 413
        # a multipart body elsewhere gets the JSON limit, not the upload limit
        elsewhere = await http.post("/v1/echo", files={"file": ("a.txt", b"z" * 4000)})
        assert elsewhere.status_code == 413
        assert elsewhere.json()["error"]["code"] == "payload_too_large"
        wrong_method = await http.put(uploads, files={"file": ("a.txt", b"z" * 4000)})
        assert wrong_method.status_code == 413


async def test_security_headers_and_closed_cors(tmp_path: Path) -> None:
    async with client(make_app(tmp_path)) as http:
        resp = await http.post(
            "/v1/echo", content=b"{}", headers={"Origin": "https://evil.example"}
        )
    assert resp.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "frame-ancestors 'none'" in CSP
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert resp.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in resp.headers


async def test_cors_allow_list(tmp_path: Path) -> None:
    app = make_app(tmp_path, origins=["https://intranet.example"])
    async with client(app) as http:
        ok = await http.options(
            "/v1/echo",
            headers={
                "Origin": "https://intranet.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        other = await http.post("/v1/echo", content=b"{}", headers={"Origin": "https://x.test"})
    assert ok.headers["access-control-allow-origin"] == "https://intranet.example"
    assert "access-control-allow-origin" not in other.headers


async def test_audit_line_per_request_without_text(tmp_path: Path) -> None:
    async with client(make_app(tmp_path)) as http:
        stream = await http.get("/v1/search/finance")
        assert "SECRET ANSWER" in stream.text and stream.headers["x-request-id"] == "r1"
        await http.post("/v1/echo", content=b"x" * 2000)  # refused with 413: still audited
    log = AuditLog(tmp_path / "audit")
    first, second = log.tail(10)
    assert first["route"] == "/v1/search/{name}" and first["path"] == "/v1/search/finance"
    assert (first["key_id"], first["key_name"], first["status"]) == ("k1", "fin", 200)
    assert first["collections"] == ["finance"] and first["document_ids"] == ["d1"]
    assert first["chunk_ids"] == ["d1:00000:aa", "d1:00001:bb"]
    assert first["latency_ms"] >= 0 and first["request_id"] == "r1"
    assert (second["status"], second["key_id"]) == (413, None)
    raw = "".join(p.read_text() for p in log.files())
    assert "SECRET" not in raw
    assert all(os.stat(p).st_mode & 0o077 == 0 for p in log.files())
    assert [json.loads(line)["status"] for line in raw.splitlines()] == [200, 413]
    assert log.tail(1) == [second]


def test_upload_names() -> None:
    assert safe_upload_name("report.pdf") == "report.pdf"
    assert safe_upload_name("../../etc/passwd") == "passwd"
    assert safe_upload_name("..\\..\\boot.ini") == "boot.ini"
    assert safe_upload_name("/abs/Q3 plan (final).docx") == "Q3 plan (final).docx"
    assert safe_upload_name(".bashrc") == "bashrc"
    assert safe_upload_name("a\x00b\nc.txt") == "abc.txt"
    assert safe_upload_name("CON.txt") == "_CON.txt"
    assert safe_upload_name("fiche d’été.md") == "fiche d_été.md"
    long = safe_upload_name("x" * 500 + ".pdf")
    assert long.endswith(".pdf") and len(long.encode()) <= 200
    for bad in ("", "..", "/", "...", "\x00"):
        with pytest.raises(ValueError):
            safe_upload_name(bad)


def test_upload_path_stays_in_area(tmp_path: Path) -> None:
    root = tmp_path / "uploads"
    (root / "hr").mkdir(parents=True)
    assert upload_path(root, "hr", "../finance/x.pdf") == (root / "hr" / "x.pdf").resolve()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (root / "hr" / "link.txt").symlink_to(outside)
    with pytest.raises(ValueError):
        upload_path(root, "hr", "link.txt")
    with pytest.raises(ValueError):
        upload_path(root, "../hr", "x.pdf")


async def test_app_wide_limits_answer_in_the_error_shape(tmp_path: Path) -> None:
    from service.api.main import create_app
    from service.settings import ServiceSettings

    settings = ServiceSettings(data_dir=tmp_path, auth="keys", limits={"upload_mb": 1})
    async with client(create_app(settings)) as http:
        big_json = await http.post(
            "/v1/query",
            content=b'{"question": "' + b"x" * 1_000_001 + b'"}',
            headers={"content-type": "application/json"},
        )
        big_upload = await http.post(
            "/v1/collections/main/documents", files={"files": ("a.txt", b"x" * 1_200_000)}
        )
        probe = await http.get("/healthz")
        no_key = await http.get("/v1/collections")
    for resp in (big_json, big_upload):  # refused before any key check or body parsing
        assert resp.status_code == 413
        assert resp.json()["error"]["code"] == "payload_too_large"
    assert probe.status_code == 200 and probe.headers["x-frame-options"] == "DENY"
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "unauthorized"
    assert no_key.headers["www-authenticate"].startswith("Bearer")


async def test_rate_limit_and_restart_on_the_real_app(tmp_path: Path) -> None:
    from service.api.main import create_app
    from service.auth.keys import KeyStore
    from service.settings import ServiceSettings

    key = KeyStore(tmp_path).create("bot", ["query"], ["hr"]).key
    auth = {"Authorization": f"Bearer {key}"}
    settings = ServiceSettings(data_dir=tmp_path, auth="keys", security={"rate_limit": "2/minute"})
    async with client(create_app(settings)) as http:
        first = [(await http.get("/v1/me", headers=auth)).status_code for _ in range(2)]
        limited = await http.get("/v1/me", headers=auth)
    assert first == [200, 200]
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    async with client(create_app(settings)) as http:  # a restart: same key, fresh counters
        again = await http.get("/v1/me", headers=auth)
    assert again.status_code == 200 and again.json()["collections"] == ["hr"]
