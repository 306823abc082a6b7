"""One resource holder, one lifespan: a service process that answers a question, indexes an
upload and runs a scheduled source loads the encoder's model once, and shuts everything down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import sentence_transformers

from service.api.main import create_app
from service.auth.keys import KeyStore
from service.settings import ServiceSettings
from tests.ingest.source_helpers import wait_for, write_corpus, write_sources
from tests.service.api_support import LiveService

pytestmark = pytest.mark.slow

NEVER = "0 0 1 1 *"  # yearly: the run below is triggered, not scheduled


def test_questions_uploads_and_scheduled_runs_share_one_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    original_init = sentence_transformers.SentenceTransformer.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        loads.append(str(args[0] if args else kwargs.get("model_name_or_path")))
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(sentence_transformers.SentenceTransformer, "__init__", counting_init)
    docs = tmp_path / "docs"
    write_corpus(docs, files=2)
    sources = write_sources(
        tmp_path / "sources.yaml",
        {"name": "hr-docs", "path": str(docs), "collection": "hr", "schedule": NEVER},
    )
    data_dir = tmp_path / "data"
    key = KeyStore(data_dir).create("ops", ["admin"], ["*"]).key
    settings = ServiceSettings(
        data_dir=data_dir,
        ollama_host="http://127.0.0.1:9",
        sources=sources,
        demo_model={"use": "never"},
        security={"rate_limit": "10000/minute"},  # the status is polled
    )
    app = create_app(settings)
    resources = app.state.resources
    headers = {"Authorization": f"Bearer {key}"}
    with LiveService(app) as live, httpx.Client(base_url=live.url, timeout=120) as client:
        assert resources.scheduler is not None  # built and started by the one lifespan
        run = client.post("/v1/sources/hr-docs/reindex", headers=headers, json={})
        assert run.status_code == 202, run.text

        def finished() -> bool:
            status = client.get("/v1/sources", headers=headers)
            assert status.status_code == 200, status.text
            last = status.json()["sources"][0]["last_runs"]
            return bool(last) and last[0]["outcome"] == "succeeded"

        wait_for(finished, 240, "the triggered run")
        upload = client.post(
            "/v1/collections/hr/documents",
            headers=headers,
            files=[("files", ("note.txt", b"The parking permit costs 40 euros a month.\n"))] * 2,
        )  # the same file twice in one request: indexed once, reported for each part
        assert upload.status_code == 200, upload.text
        first, second = upload.json()["files"]
        assert first["status"] == second["status"] == "indexed"
        assert first["document_id"] and first["document_id"] == second["document_id"]
        client.get("/readyz", headers=headers)  # builds the retriever (the model server is down)
        assert resources.built_retriever is not None
        encoder = resources.encoder()
        assert resources.uploads()._embedder is encoder
        assert resources.scheduler.runner._embedder is encoder
    assert len(loads) == 1, loads
    assert resources.scheduler is None  # shut down with the app
