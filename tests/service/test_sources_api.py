"""GET /v1/sources and POST /v1/sources/{name}/reindex on a live service with API keys.

The service runs the real default pipeline in a background thread; its lifespan starts the
embedded scheduler (``make run``: service + worker in one process) and refuses to start
on an invalid sources file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ingest.sources import SourcesError
from service.api.main import create_app
from service.auth.keys import KeyStore
from service.settings import ServiceSettings
from tests.ingest.source_helpers import wait_for, write_corpus, write_sources
from tests.service.api_support import LiveService

pytestmark = pytest.mark.slow

KEYS = {
    "admin": (["admin"], ["*"]),
    "hr_ingest": (["ingest"], ["hr"]),
    "fin_ingest": (["ingest"], ["finance"]),
    "hr_query": (["query"], ["hr"]),
}
NEVER = "0 0 1 1 *"  # yearly: nothing fires by itself during these tests


@dataclass
class Service:
    url: str
    keys: dict[str, str]
    docs: dict[str, Path]

    def call(self, kind: str | None, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[kind]}"} if kind else {}
        with httpx.Client(base_url=self.url, timeout=60) as client:
            return client.request(method, path, json=body, headers=headers)

    def sources(self, kind: str) -> dict[str, Any]:
        resp = self.call(kind, "GET", "/v1/sources")
        assert resp.status_code == 200, resp.text
        return {s["name"]: s for s in resp.json()["sources"]}


def settings_for(data_dir: Path, sources: Path | None, **extra: Any) -> ServiceSettings:
    return ServiceSettings(
        data_dir=data_dir,
        ollama_host="http://127.0.0.1:9",
        auth="keys",
        sources=sources,
        demo_model={"use": "never"},
        security={"rate_limit": "10000/minute", "auth_failure_limit": "10000/minute"},
        **extra,
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    base = tmp_path_factory.mktemp("sources-api")
    data_dir = base / "data"
    docs = {"hr": base / "hr", "finance": base / "finance"}
    write_corpus(docs["hr"], files=3)
    write_corpus(docs["finance"], files=2)
    sources = write_sources(
        base / "sources.yaml",
        {"name": "hr-docs", "path": str(docs["hr"]), "collection": "hr", "schedule": NEVER},
        {"name": "fin", "path": str(docs["finance"]), "collection": "finance", "schedule": NEVER},
    )
    store = KeyStore(data_dir)
    keys = {kind: store.create(kind, *spec).key for kind, spec in KEYS.items()}
    with LiveService(create_app(settings_for(data_dir, sources))) as live:
        yield Service(live.url, keys, docs)


def test_reindex_runs_in_the_background_and_status_follows(service: Service) -> None:
    resp = service.call("hr_ingest", "POST", "/v1/sources/hr-docs/reindex", {"full": True})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["source"] == "hr-docs" and body["collection"] == "hr"
    assert body["outcome"] == "running" and len(body["run_id"]) == 32
    again = service.call("admin", "POST", "/v1/sources/hr-docs/reindex")
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "reindex_running"

    running = service.sources("hr_ingest")["hr-docs"]["running"]
    assert running is not None and running["id"] == body["run_id"] and running["full"]

    def done() -> dict[str, Any] | None:
        runs = service.sources("hr_ingest")["hr-docs"]["last_runs"]
        return runs[0] if runs and runs[0]["outcome"] != "running" else None

    run = wait_for(done, 240, "the API-triggered run")
    assert isinstance(run, dict)
    assert run["id"] == body["run_id"] and run["trigger"] == "api"
    assert run["outcome"] == "succeeded", run
    assert run["counts"] == {"indexed": 3, "unchanged": 0, "removed": 0, "failed": 0}
    assert run["progress"]["files_done"] == run["progress"]["files_total"] == 3
    status = service.sources("hr_query")["hr-docs"]
    assert status["running"] is None and status["next_run_at"].startswith(
        str(int(run["started_at"][:4]) + 1)
    )
    assert status["scheduler"]["pid"] > 0  # the embedded worker plans it


def test_scopes_and_collections(service: Service) -> None:
    assert set(service.sources("admin")) == {"hr-docs", "fin"}
    assert set(service.sources("hr_query")) == {"hr-docs"}
    assert set(service.sources("fin_ingest")) == {"fin"}
    assert service.call(None, "GET", "/v1/sources").status_code == 401
    for kind, name, status in [
        ("hr_ingest", "fin", 404),  # ingest, but on another collection: as unknown
        ("hr_query", "hr-docs", 403),  # reading is not re-indexing
        (None, "hr-docs", 401),
        ("admin", "nope", 404),
        ("hr_ingest", "nope", 404),
    ]:
        resp = service.call(kind, "POST", f"/v1/sources/{name}/reindex")
        assert resp.status_code == status, (kind, name, resp.text)
    resp = service.call("fin_ingest", "POST", "/v1/sources/fin/reindex", {"full": "x"})
    assert resp.status_code == 422


def test_embedded_scheduler_runs_with_the_app(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, files=2)
    sources = write_sources(
        tmp_path / "sources.yaml",
        {"name": "docs", "path": str(docs), "collection": "main", "schedule": "* * * * * *"},
    )
    data_dir = tmp_path / "data"
    keys = KeyStore(data_dir).create("admin", ["admin"], ["*"]).key
    others = scheduler_threads()  # another test's service (module fixture) may still run one
    with LiveService(create_app(settings_for(data_dir, sources))) as live:
        svc = Service(live.url, {"admin": keys}, {"main": docs})

        def scheduled_run() -> bool:
            runs = svc.sources("admin")["docs"]["last_runs"]
            return any(r["trigger"] == "schedule" and r["outcome"] == "succeeded" for r in runs)

        wait_for(scheduled_run, 240, "a scheduled run inside the service")
        assert scheduler_threads() - others  # the loop that fires the schedules
    assert not scheduler_threads() - others  # shut down with the app
    # with the worker outside (INHOUSE_EMBEDDED_WORKER=false) the service only reports: no
    # scheduling loop runs (checked directly instead of waiting for a run that never comes)
    settings = settings_for(data_dir, sources, embedded_worker=False)
    with TestClient(create_app(settings)) as client:
        first = client.get("/v1/sources", headers=_auth(keys)).json()["sources"][0]
        assert not scheduler_threads() - others
        assert not [n for n in thread_names() if n.startswith("reindex-")]
        after = client.get("/v1/sources", headers=_auth(keys)).json()["sources"][0]
        assert after["last_runs"] == first["last_runs"] and after["scheduler"] is None


def scheduler_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "scheduler"}


def thread_names() -> list[str]:
    return [t.name for t in threading.enumerate()]


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_invalid_sources_file_stops_the_app_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "sources.yaml"
    bad.write_text("sources:\n  - name: docs\n    paths: [/x]\n    schedule: 'hourly'\n")
    app = create_app(settings_for(tmp_path / "data", bad))
    with pytest.raises(SourcesError, match=r"source 'docs' \(entry 1\), field 'schedule'"):
        with TestClient(app):
            pass


def test_no_sources_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = KeyStore(data_dir).create("admin", ["admin"], ["*"]).key
    with TestClient(create_app(settings_for(data_dir, None))) as client:
        resp = client.get("/v1/sources", headers=_auth(key))
        assert resp.status_code == 404 and "INHOUSE_SOURCES" in resp.text
