"""/healthz, /readyz, /v1/collections and the OpenAPI schema on the live service."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ingest.index import ChromaIndex, make_chroma_client
from ingest.manifest import Manifest
from ingest.settings import IngestSettings
from service.api.deps import get_retriever
from service.api.main import create_app
from service.retrieval import Retriever
from tests.service.api_support import (
    LiveService,
    build_index,
    make_retriever,
    service_settings,
    shared_embedder,
)
from tests.service.ollama_server import OllamaTestServer

Start = Callable[[str], LiveService]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("index")
    build_index(path)
    settings = IngestSettings(data_dir=path)
    ChromaIndex(make_chroma_client(settings), shared_embedder().info).collection(
        "empty", create=True
    )
    manifest = Manifest.open(settings)
    manifest.record_failure(
        doc_id="broken1",
        collection="main",
        root="/docs",
        path="broken.pdf",
        size=10,
        mtime_ns=0,
        content_hash=None,
        code="corrupt",
        message="not a PDF",
    )
    manifest.close()
    return path


@pytest.fixture(scope="module")
def retriever(data_dir: Path) -> Retriever:
    return make_retriever(data_dir)


@pytest.fixture
def start(data_dir: Path, retriever: Retriever) -> Iterator[Start]:
    running: list[LiveService] = []

    def _start(ollama_url: str) -> LiveService:
        app = create_app(service_settings(data_dir, ollama_url))
        app.dependency_overrides[get_retriever] = lambda: retriever
        running.append(LiveService(app).__enter__())
        return running[-1]

    yield _start
    for live in running:
        live.__exit__(None, None, None)


def test_healthz(start: Start) -> None:
    live = start("http://127.0.0.1:9")

    response = httpx.get(f"{live.url}/healthz")

    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_ready_when_index_and_model_are(start: Start, ollama_server: OllamaTestServer) -> None:
    live = start(ollama_server.url)

    response = httpx.get(f"{live.url}/readyz", timeout=20)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"index", "model_server", "model"}
    assert all(check["ok"] for check in body["checks"].values())
    # optional readers are detailed, informative only
    assert set(body["readers"]) == {"tesseract", "libreoffice"}
    assert body["readers"]["tesseract"]["package"] == "tesseract-ocr"


def test_not_ready_when_the_model_is_not_pulled(
    start: Start, ollama_server: OllamaTestServer
) -> None:
    ollama_server.script.models.clear()
    live = start(ollama_server.url)

    response = httpx.get(f"{live.url}/readyz", timeout=20)

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["index"]["ok"] and checks["model_server"]["ok"]
    assert not checks["model"]["ok"] and "ollama pull" in checks["model"]["detail"]


def test_not_ready_when_the_model_server_is_down(start: Start) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    live = start(url)

    response = httpx.get(f"{live.url}/readyz", timeout=20)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["index"]["ok"]
    assert not body["checks"]["model_server"]["ok"] and not body["checks"]["model"]["ok"]


def test_collections_list_counts(start: Start) -> None:
    live = start("http://127.0.0.1:9")

    response = httpx.get(f"{live.url}/v1/collections", timeout=20)

    assert response.status_code == 200, response.text
    by_name = {c["name"]: c for c in response.json()["collections"]}
    assert set(by_name) == {"empty", "finance", "main"}
    main = by_name["main"]
    assert (main["documents"], main["chunks"], main["failed"], main["pending"]) == (2, 4, 1, 0)
    assert by_name["finance"]["chunks"] == 1 and by_name["empty"]["documents"] == 0
    assert main["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_openapi_schema_describes_the_api(start: Start) -> None:
    live = start("http://127.0.0.1:9")

    schema = httpx.get(f"{live.url}/openapi.json").json()

    paths = schema["paths"]
    for path in ("/v1/query", "/v1/chat/completions", "/v1/collections", "/healthz", "/readyz"):
        assert path in paths
    assert "/v1/reasoning/{request_id}" in paths
    components = schema["components"]["schemas"]
    assert {"QueryRequest", "QueryResponse", "ChatCompletionRequest", "ErrorResponse"} <= set(
        components
    )
    assert "text/event-stream" in paths["/v1/query"]["post"]["responses"]["200"]["content"]


def test_start_up_purges_expired_reasoning_files(tmp_path: Path, retriever: Retriever) -> None:
    reasoning_dir = tmp_path / "reasoning"
    reasoning_dir.mkdir()
    old = reasoning_dir / "reasoning-2020-01-01.jsonl"
    old.write_text('{"request_id": "x"}\n')
    today = reasoning_dir / f"reasoning-{datetime.now(UTC).date()}.jsonl"
    today.write_text('{"request_id": "y"}\n')
    settings = service_settings(
        tmp_path, "http://127.0.0.1:9", reasoning_log={"dir": reasoning_dir, "retention_days": 7}
    )

    with LiveService(create_app(settings)):
        deadline = time.monotonic() + 5
        while old.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    assert not old.exists() and today.exists()
