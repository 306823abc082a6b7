"""Browser-test fixtures: a real service on loopback (keys, index, Ollama test server)
and Debian's Chromium driven by Playwright.

The corpus is generated here: a three-page PDF handbook (real file, so the download
route serves it), a note full of XSS payloads, and a payroll page in another
collection; chunks are written straight into Chroma + the manifest, as ingestion
would. Uploads during the tests go through the real ingest pipeline.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingest.index import (
    META_CHUNK_HASH,
    META_COLLECTION,
    META_DOC_HASH,
    META_DOCUMENT_ID,
    META_FILE_TYPE,
    META_PAGE_END,
    META_PAGE_START,
    META_POSITION,
    META_SOURCE,
    META_TITLE,
    ChromaIndex,
    StoredChunk,
    chunk_hash,
    chunk_id,
    document_id,
    make_chroma_client,
)
from ingest.manifest import Manifest
from ingest.settings import IngestSettings
from tests.service.api_support import LiveService, make_retriever, shared_embedder
from tests.service.ollama_server import OllamaTestServer, Script, start_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "web"

HANDBOOK_PAGES = [
    "New employees receive 25 days of paid vacation per year. Vacation requests go to the"
    " team lead at least two weeks in advance.",
    "Remote work is allowed up to three days a week with the manager's approval. Laptops"
    " must use the company VPN outside the office.",
    "The office opens at 8 am and closes at 7 pm on weekdays. Visitors sign in at the front desk.",
]
XSS_TITLE = "Drill notes <b onmouseover=\"window.__pwned='title'\">bold</b>"
XSS_TEXT = (
    "Fire drill notes. <script>window.__pwned = 'script'</script>"
    " <img src=x onerror=\"window.__pwned = 'onerror'\">"
    " [Open the runbook](javascript:window.__pwned='link')"
    " <a href=\"javascript:window.__pwned='anchor'\">evacuation map</a>"
    " The fire assembly point is the north car park."
)
PAYROLL_TEXT = "Salaries are paid on the 25th of every month by bank transfer."


@dataclass(frozen=True)
class Corpus:
    data_dir: Path
    docs_dir: Path
    handbook_id: str
    keys: dict[str, str]  # role -> API key


def write_pdf(path: Path, pages: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


def index_document(
    index: ChromaIndex,
    manifest: Manifest,
    collection: str,
    root: Path,
    path: str,
    title: str,
    pages: list[str],
    paged: bool,
) -> str:
    """Write one document's chunks (one per page) and its manifest row."""
    doc_id = document_id(collection, str(root), path)
    doc_hash = chunk_hash("\n".join(pages))
    file_type = path.rsplit(".", 1)[-1]
    chunks = []
    for position, text in enumerate(pages):
        meta: dict[str, str | int | float | bool] = {
            META_COLLECTION: collection,
            META_DOCUMENT_ID: doc_id,
            META_SOURCE: path,
            META_TITLE: title,
            META_FILE_TYPE: file_type,
            META_POSITION: position,
            META_CHUNK_HASH: chunk_hash(text),
            META_DOC_HASH: doc_hash,
        }
        if paged:
            meta[META_PAGE_START] = meta[META_PAGE_END] = position + 1
        chunks.append(StoredChunk(chunk_id(doc_id, position, chunk_hash(text)), text, meta))
    manifest.begin_document(
        doc_id=doc_id,
        collection=collection,
        root=str(root),
        path=path,
        size=(root / path).stat().st_size,
        mtime_ns=0,
        pending_hash=doc_hash,
        embedder=index.embedder.name,
    )
    index.upsert(collection, chunks, shared_embedder().encode(pages))
    manifest.finish_indexed(
        doc_id,
        content_hash=doc_hash,
        chunk_count=len(chunks),
        file_type=file_type,
        title=title,
        page_count=len(pages) if paged else None,
    )
    return doc_id


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    from service.auth.keys import KeyStore

    base = tmp_path_factory.mktemp("web")
    data_dir, docs = base / "data", base / "docs"
    (docs / "hr").mkdir(parents=True)
    write_pdf(docs / "hr" / "handbook.pdf", HANDBOOK_PAGES)
    (docs / "hr" / "drill-notes.md").write_text(XSS_TEXT)
    (docs / "payroll.txt").write_text(PAYROLL_TEXT)
    settings = IngestSettings(data_dir=data_dir)
    settings.ensure_data_dir()
    index = ChromaIndex(make_chroma_client(settings), shared_embedder().info)
    manifest = Manifest.open(settings)
    try:
        handbook = index_document(
            index, manifest, "hr", docs, "hr/handbook.pdf", "Employee Handbook",
            HANDBOOK_PAGES, paged=True,
        )  # fmt: skip
        index_document(
            index, manifest, "hr", docs, "hr/drill-notes.md", XSS_TITLE, [XSS_TEXT], paged=False
        )
        index_document(
            index, manifest, "finance", docs, "payroll.txt", "Payroll Calendar",
            [PAYROLL_TEXT], paged=False,
        )  # fmt: skip
    finally:
        manifest.close()
    store = KeyStore(data_dir)
    roles = {
        "employee": (["query"], ["hr"]),
        "auditor": (["query", "reasoning:read"], ["hr"]),
        "editor": (["query", "ingest"], ["hr"]),
        "newcomer": (["query"], ["legal"]),
        "leaver": (["query"], ["hr"]),
    }
    try:
        keys = {
            role: store.create(role.title(), scopes, colls).key
            for role, (scopes, colls) in roles.items()
        }
    finally:
        store.close()
    return Corpus(data_dir, docs, handbook, keys)


@pytest.fixture(scope="module")
def ollama() -> Iterator[OllamaTestServer]:
    server = start_server(Script())
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Service:
    url: str
    app: Any
    settings: Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def service(corpus: Corpus, ollama: OllamaTestServer) -> Iterator[Service]:
    from ingest.pipeline import IngestPipeline
    from service.api.deps import get_retriever
    from service.api.main import create_app
    from service.api.routes.files import get_uploads
    from service.settings import ServiceSettings
    from service.uploads import UploadService

    extra: dict[str, Any] = {}
    if "demo_model" in ServiceSettings.model_fields:
        extra["demo_model"] = {"use": "never"}  # model down means down: passages only
    settings = ServiceSettings(
        data_dir=corpus.data_dir, ollama_host=ollama.url, auth="keys", **extra
    )
    app = create_app(settings)
    retriever = make_retriever(corpus.data_dir)
    ingest_settings = IngestSettings(data_dir=corpus.data_dir)
    uploads = UploadService(
        ingest_settings,
        max_bytes=int(settings.limits.upload_mb * 1024 * 1024),
        pipeline_factory=lambda s, parser: IngestPipeline(
            s, embedder=shared_embedder(), parser_factory=parser
        ),
    )
    app.dependency_overrides[get_retriever] = lambda: retriever
    app.dependency_overrides[get_uploads] = lambda: uploads
    try:
        with LiveService(app) as live:
            yield Service(live.url, app, settings)
    finally:
        uploads.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (not playwright install)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    """Folder for screenshots of the main states (gitignored)."""
    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir(parents=True)
    return OUTPUT


@pytest.fixture
def chat(browser: Any, service: Service, shots: Path) -> Iterator[Any]:
    """A fresh browser context on the chat (a ``Chat``); checked clean at the end."""
    from tests.web.chat_support import Chat

    context = browser.new_context(viewport={"width": 1360, "height": 860}, color_scheme="light")
    try:
        session = Chat(context.new_page(), service, shots)
        yield session
        session.assert_clean()
    finally:
        context.close()


@pytest.fixture
def fresh_model(ollama: OllamaTestServer) -> None:
    """No queued replies, no recorded requests, no forced error status."""
    ollama.reset()
    ollama.script.error_status = None
