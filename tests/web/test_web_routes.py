"""The web chat's service routes without a browser: the page and its assets under a strict
CSP, /v1/me, the original-file download (ACL, traversal) and uploads (scope, names, size)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest.manifest import Manifest
from ingest.report import FileResult, IngestReport
from ingest.settings import IngestSettings
from service.api.main import create_app
from service.api.routes.files import get_uploads
from service.api.routes.web import WEB_DIR, asset_path
from service.auth.keys import KeyStore
from service.errors import NotFound
from service.settings import ServiceSettings
from service.uploads import UploadService

INDEX_HTML = (WEB_DIR / "index.html").read_text()


class FakePipeline:
    """Stands in for IngestPipeline: records runs, 'indexes' .md files, rejects the rest."""

    def __init__(self) -> None:
        self.runs: list[tuple[list[Path], str]] = []

    def run(self, paths: list[Path], collection: str) -> IngestReport:
        self.runs.append((list(paths), collection))
        report = IngestReport(collection=collection, roots=[], started_at="now")
        for path in paths:
            path = path.resolve()
            ok = path.suffix == ".md"
            report.files.append(
                FileResult(
                    path=path.name,
                    root=str(path.parent),
                    document_id="doc-" + path.stem,
                    status="indexed" if ok else "failed",
                    reason=None if ok else "unsupported_type",
                    message=None if ok else "not a document",
                    chunks=2 if ok else 0,
                )
            )
        return report

    def close(self) -> None:
        pass


@dataclass
class Setup:
    client: TestClient
    data_dir: Path
    keys: dict[str, str]
    pipeline: FakePipeline

    def get(self, path: str, role: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return self.client.get(path, headers=headers)

    def upload(self, role: str, collection: str, *files: tuple[str, bytes]) -> Any:
        return self.client.post(
            f"/v1/collections/{collection}/documents",
            headers={"Authorization": f"Bearer {self.keys[role]}"},
            files=[("files", (name, data, "application/octet-stream")) for name, data in files],
        )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    data_dir = tmp_path / "data"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.pdf").write_bytes(b"%PDF-1.4 handbook")
    (docs / "salaries.txt").write_text("secret salaries")
    (tmp_path / "outside.txt").write_text("outside the root")
    (docs / "escape.txt").symlink_to(tmp_path / "outside.txt")
    settings = IngestSettings(data_dir=data_dir)
    settings.ensure_data_dir()
    manifest = Manifest.open(settings)
    for doc_id, coll, path in (
        ("hb", "hr", "handbook.pdf"),
        ("sal", "finance", "salaries.txt"),
        ("esc", "hr", "escape.txt"),
        ("gone", "hr", "deleted.pdf"),
    ):
        manifest.begin_document(
            doc_id=doc_id,
            collection=coll,
            root=str(docs),
            path=path,
            size=1,
            mtime_ns=0,
            pending_hash="h",
            embedder="e",
        )
        manifest.finish_indexed(
            doc_id, content_hash="h", chunk_count=1, file_type="pdf", title=path, page_count=1
        )
    manifest.close()
    store = KeyStore(data_dir)
    specs = {
        "reader": (["query"], ["hr"]),
        "writer": (["query", "ingest"], ["hr"]),
        "auditor": (["query", "reasoning:read"], ["hr", "finance"]),
    }
    keys = {role: store.create(role, s, c).key for role, (s, c) in specs.items()}
    store.close()
    app = create_app(
        ServiceSettings(
            data_dir=data_dir,
            ollama_host="http://127.0.0.1:9",
            auth="keys",
            limits={"upload_mb": 1},
        )
    )
    pipeline = FakePipeline()
    uploads = UploadService(
        IngestSettings(data_dir=data_dir),
        max_bytes=1024 * 1024,
        pipeline_factory=lambda s, parser: pipeline,  # type: ignore[arg-type,return-value]
    )
    app.dependency_overrides[get_uploads] = lambda: uploads
    with TestClient(app) as client:
        yield Setup(client, data_dir, keys, pipeline)
    uploads.close()


def test_page_is_public_with_a_strict_csp_and_no_inline_code(setup: Setup) -> None:
    page = setup.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
    ):
        assert directive in csp
    assert "unsafe" not in csp
    # nothing the CSP would have to allow: no inline script, style or handler, no outside URL
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", INDEX_HTML)
    assert not re.search(r"\sstyle=|<style|\son[a-z]+=", INDEX_HTML)
    assert not re.search(r"(src|href)=\"(https?:)?//", INDEX_HTML)
    for source in WEB_DIR.rglob("*.js"):
        code = source.read_text()
        assert "innerHTML" not in code and "outerHTML" not in code, source
        assert "insertAdjacentHTML" not in code and "eval(" not in code, source
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", code), source


def test_assets_are_served_and_nothing_else(setup: Setup) -> None:
    script = setup.get("/static/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "content-security-policy" in script.headers
    assert setup.get("/static/js/markdown.js").status_code == 200
    assert setup.get("/static/app.css").headers["content-type"].startswith("text/css")
    for bad in ("../service/settings.py", "..%2Fpyproject.toml", "index.html", "missing.js"):
        response = setup.get(f"/static/{bad}")
        assert response.status_code == 404, bad
        assert response.json()["error"]["code"] == "not_found"
    for bad in ("../app.js", "js/../../x.toml", ".hidden.js", "js//dom.js", "a/b/../x.js"):
        with pytest.raises(NotFound):
            asset_path(WEB_DIR, bad)


def test_me_describes_the_key(setup: Setup) -> None:
    assert setup.get("/v1/me").status_code == 401
    me = setup.get("/v1/me", "auditor").json()
    assert me["name"] == "auditor"
    assert me["scopes"] == ["query", "reasoning:read"]
    assert me["collections"] == ["finance", "hr"]
    assert me["reasoning"] is True and me["ingest"] is False
    assert me["limits"]["upload_mb"] == 1
    writer = setup.get("/v1/me", "writer").json()
    assert writer["ingest"] is True and writer["reasoning"] is False


def test_download_only_readable_documents_inside_their_root(setup: Setup) -> None:
    pdf = setup.get("/v1/documents/hb/file", "reader")
    assert pdf.status_code == 200
    assert pdf.content == b"%PDF-1.4 handbook"
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("inline")
    assert pdf.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in pdf.headers["cache-control"]
    # another collection's document looks exactly like a missing one
    forbidden = setup.get("/v1/documents/sal/file", "reader")
    missing = setup.get("/v1/documents/nope/file", "reader")
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.json()["error"]["code"] == "not_found"
    text = setup.get("/v1/documents/sal/file", "auditor")
    assert text.status_code == 200
    assert text.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in text.headers["content-security-policy"]
    assert setup.get("/v1/documents/esc/file", "reader").status_code == 404  # symlink out
    assert setup.get("/v1/documents/gone/file", "reader").status_code == 404
    assert setup.get("/v1/documents/hb/file").status_code == 401


def test_upload_needs_ingest_on_the_collection(setup: Setup) -> None:
    assert setup.upload("reader", "hr", ("a.md", b"# A")).status_code == 403
    assert setup.upload("writer", "finance", ("a.md", b"# A")).status_code == 403
    bad_name = setup.upload("writer", "../etc", ("a.md", b"# A"))
    assert bad_name.status_code in (403, 404, 422)
    assert setup.pipeline.runs == []


def test_upload_stores_sanitised_names_and_reports_each_file(setup: Setup) -> None:
    response = setup.upload(
        "writer",
        "hr",
        ("../../escape.md", b"# Escape attempt"),
        ("notes.md", b"# Notes"),
        ("tool.exe", b"MZ binary"),
        ("..", b"nothing"),
        ("big.md", b"x" * (1024 * 1024 + 1)),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["collection"] == "hr"
    by_name = {f["filename"]: f for f in body["files"]}
    area = setup.data_dir / "uploads" / "hr"
    assert by_name["escape.md"]["status"] == "indexed"
    assert (area / "escape.md").read_bytes() == b"# Escape attempt"
    assert by_name["notes.md"] == {
        "filename": "notes.md",
        "status": "indexed",
        "document_id": "doc-notes",
        "code": None,
        "message": None,
        "chunks": 2,
        "pages": None,
        "bytes": 0,
    }
    assert by_name["tool.exe"]["status"] == "failed"
    assert by_name["tool.exe"]["code"] == "unsupported_type"
    assert by_name[".."]["code"] == "invalid_filename"
    assert by_name["big.md"]["code"] == "too_large"
    assert not (area / "big.md").exists()
    assert sorted(p.name for p in area.iterdir()) == ["escape.md", "notes.md", "tool.exe"]
    assert not list(setup.data_dir.parent.glob("escape.md"))
    # one serialised pipeline run for the stored files
    [(paths, collection)] = setup.pipeline.runs
    assert collection == "hr" and sorted(p.name for p in paths) == sorted(
        ["escape.md", "notes.md", "tool.exe"]
    )
