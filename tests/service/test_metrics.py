"""GET /metrics end to end: uvicorn on a loopback port, the Ollama test server, a real
Chroma index, a real upload pipeline (parsing in process); scrapes parsed with the
Prometheus text parser. Access: the ``metrics`` scope, admin keys, or the public setting."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingest.pipeline import IngestPipeline
from ingest.settings import IngestSettings
from service.api.deps import get_retriever
from service.api.main import create_app
from service.api.routes.files import get_uploads
from service.auth.keys import KeyStore
from service.evaluation.corpus_index import InProcessParser
from service.retrieval import Retriever
from service.uploads import UploadService
from tests.ingest.source_helpers import wait_for, write_corpus, write_sources
from tests.service.api_support import (
    LiveService,
    build_index,
    make_retriever,
    service_settings,
    shared_embedder,
)
from tests.service.ollama_server import OllamaTestServer, Reply

QUESTION = "How many vacation days do new employees get?"
ANSWER = "New employees receive 25 days of paid vacation per year [1]."


def scrape_text(url: str, key: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a scrape, through prometheus_client's own text parser."""
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def value(scraped: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels`` (0 if none)."""
    return sum(
        v
        for n, have, v in scraped
        if n == name and all(have.get(k) == w for k, w in labels.items())
    )


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("index")
    build_index(data_dir)
    return data_dir


@pytest.fixture(scope="module")
def retriever(index_dir: Path) -> Retriever:
    return make_retriever(index_dir)


@dataclass
class Running:
    url: str
    ollama: OllamaTestServer
    data_dir: Path


def in_process_uploads(data_dir: Path) -> UploadService:
    """The real upload service and pipeline; parsing in this process (no parser pool)."""

    def pipeline(settings: IngestSettings, _parser: Any) -> IngestPipeline:
        return IngestPipeline(settings, parser_factory=InProcessParser, embedder=shared_embedder())

    return UploadService(
        IngestSettings(data_dir=data_dir), max_bytes=1 << 20, pipeline_factory=pipeline
    )


@pytest.fixture
def running(
    retriever: Retriever, ollama_server: OllamaTestServer, tmp_path: Path
) -> Iterator[Running]:
    data_dir = tmp_path / "data"
    settings = service_settings(data_dir, ollama_server.url, metrics={"public": True})
    app = create_app(settings)
    app.dependency_overrides[get_retriever] = lambda: retriever
    uploads = in_process_uploads(data_dir)
    app.dependency_overrides[get_uploads] = lambda: uploads
    try:
        with LiveService(app) as live:
            yield Running(live.url, ollama_server, data_dir)
    finally:
        uploads.close()


def test_counters_move_with_queries_uploads_and_misses(running: Running) -> None:
    before = samples(scrape_text(running.url))
    running.ollama.script.push(Reply.answer(ANSWER, "Source 1 says 25."))

    model = httpx.post(f"{running.url}/v1/query", json={"question": QUESTION}, timeout=60)
    extract = httpx.post(
        f"{running.url}/v1/query", json={"question": QUESTION, "mode": "extract"}, timeout=60
    )
    missing = httpx.get(f"{running.url}/v1/no-such-thing/secret-path-42", timeout=30)
    upload = httpx.post(
        f"{running.url}/v1/collections/uploaded/documents",
        files=[
            ("files", ("notes.md", b"# Notes\n\nThe canteen opens at noon.\n", "text/markdown"))
        ],
        timeout=120,
    )

    assert model.status_code == 200 and model.json()["mode"] == "model", model.text
    assert extract.status_code == 200 and extract.json()["mode"] == "extract", extract.text
    assert missing.status_code == 404
    assert upload.status_code == 200, upload.text
    [stored] = upload.json()["files"]
    assert stored["status"] == "indexed" and stored["chunks"] > 0
    text = scrape_text(running.url)
    after = samples(text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    query = {"method": "POST", "route": "/v1/query", "status": "200"}
    assert delta("inhouse_http_requests_total", **query) == 2
    assert delta("inhouse_http_request_duration_seconds_count", **query) == 2
    assert delta("inhouse_http_requests_total", route="unmatched", status="404") == 1
    assert "secret-path-42" not in text  # route templates only, never raw paths
    upload_route = {"route": "/v1/collections/{name}/documents", "status": "200"}
    assert delta("inhouse_http_requests_total", method="POST", **upload_route) == 1
    assert delta("inhouse_answers_total", mode="model", code="ok") == 1
    assert delta("inhouse_answers_total", mode="extract", code="ok") == 1
    assert delta("inhouse_answers_total") == 2
    assert delta("inhouse_retrieval_duration_seconds_count") == 2
    assert delta("inhouse_model_first_token_seconds_count", model="deepseek-r1:8b") == 1
    assert delta("inhouse_model_tokens_per_second_count", model="deepseek-r1:8b") == 1
    usage = model.json()["usage"]
    assert delta("inhouse_model_tokens_total", kind="completion") == usage["completion_tokens"]
    assert delta("inhouse_ingest_files_total", status="indexed", reason="none") == 1
    assert delta("inhouse_ingest_files_total") == 1
    assert delta("inhouse_ingest_chunks_written_total") == stored["chunks"]
    # the new collection's lexical mirror was built (a query may also have synced others)
    assert delta("inhouse_lexical_refreshes_total", kind="full") >= 1
    assert delta("inhouse_lexical_chunks_total", change="added") >= stored["chunks"]


def test_model_failures_count_by_mode_and_code(running: Running) -> None:
    before = samples(scrape_text(running.url))
    for _ in range(2):
        running.ollama.script.push(Reply.failing(500, "model crashed"))
    fell_back = httpx.post(f"{running.url}/v1/query", json={"question": QUESTION}, timeout=60)
    failed = httpx.post(
        f"{running.url}/v1/query", json={"question": QUESTION, "fallback": "none"}, timeout=60
    )
    assert fell_back.status_code == 200 and fell_back.json()["mode"] == "extract"
    code = fell_back.json()["notice"]["code"]
    assert failed.status_code >= 500 and failed.json()["error"]["code"] == code
    after = samples(scrape_text(running.url))
    got = {
        (labels["mode"], labels["code"]): v - value(before, name, **labels)
        for name, labels, v in after
        if name == "inhouse_answers_total" and v - value(before, name, **labels)
    }
    assert got == {("extract", code): 1, ("none", code): 1}
    assert value(after, "inhouse_http_requests_total", status=str(failed.status_code)) >= 1


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    data_dir = tmp_path / "data"
    store = KeyStore(data_dir)
    keys = {
        name: store.create(name, scopes, ["*"]).key
        for name, scopes in {
            "query": ["query"],
            "metrics": ["metrics"],
            "admin": ["admin"],
        }.items()
    }
    settings = service_settings(data_dir).model_copy(update={"auth": "keys"})
    with LiveService(create_app(settings)) as live:
        yield live.url, keys


def test_metrics_need_the_metrics_scope(keyed: tuple[str, dict[str, str]]) -> None:
    url, keys = keyed
    no_key = httpx.get(f"{url}/metrics", timeout=30)
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "unauthorized"
    query_key = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {keys['query']}"})
    assert query_key.status_code == 403 and query_key.json()["error"]["code"] == "forbidden"
    for name in ("metrics", "admin"):
        scraped = samples(scrape_text(url, keys[name]))
        refused = {"route": "/metrics", "method": "GET"}
        assert value(scraped, "inhouse_http_requests_total", status="401", **refused) == 1
        assert value(scraped, "inhouse_http_requests_total", status="403", **refused) == 1
    # the admin page can grant it, alongside every other scope
    created = httpx.post(
        f"{url}/v1/admin/keys",
        json={
            "name": "scraper",
            "scopes": ["query", "ingest", "reasoning:read", "metrics", "admin"],
        },
        headers={"Authorization": f"Bearer {keys['admin']}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert "metrics" in created.json()["record"]["scopes"]
    # the metrics scope opens nothing else
    me = httpx.get(f"{url}/v1/collections", headers={"Authorization": f"Bearer {keys['metrics']}"})
    assert me.status_code == 403


def test_public_metrics_need_no_key_and_open_nothing_else(tmp_path: Path) -> None:
    settings = service_settings(tmp_path / "data", metrics={"public": True}).model_copy(
        update={"auth": "keys"}
    )
    with LiveService(create_app(settings)) as live:
        scraped = samples(scrape_text(live.url))
        assert value(scraped, "inhouse_answers_total") == 0
        assert httpx.get(f"{live.url}/v1/collections", timeout=30).status_code == 401


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_embedded_scheduler_runs_count_in_the_service_metrics(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, files=2)
    sources = write_sources(
        tmp_path / "sources.yaml",
        {"name": "docs", "path": str(docs), "collection": "sched", "schedule": "* * * * * *"},
    )
    settings = service_settings(
        tmp_path / "data", sources=sources, embedded_worker=True, metrics={"public": True}
    )
    with LiveService(create_app(settings)) as live:

        def run_done() -> bool:  # files are counted as they finish, the lexical sync last
            scraped = samples(scrape_text(live.url))
            return value(scraped, "inhouse_lexical_refreshes_total", kind="full") >= 1

        wait_for(run_done, 300, "the scheduled run's end in /metrics")
        scraped = samples(scrape_text(live.url))
    assert value(scraped, "inhouse_ingest_files_total", status="indexed") == 2
    assert value(scraped, "inhouse_ingest_chunks_written_total") >= 2
    assert value(scraped, "inhouse_lexical_refreshes_total", kind="full") >= 1
