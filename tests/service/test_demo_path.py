"""What `make run` and the Docker image do with the files shipped in the repository.

`make run` ingests ingest/demo_docs with the human-readable `inhouse ingest` output, then
serves with ingest/demo_sources.yaml as the worker's sources; the image uses
docker/sources.yaml. The demo documents are ingested for real and one question is asked.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from ingest.sources import load_sources
from service.api.main import create_app
from tests.ingest.cli_helpers import run_inhouse, run_json
from tests.service.api_support import LiveService, service_settings
from tests.service.ollama_server import OllamaTestServer, Reply

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DEMO_DOCS = REPO / "ingest" / "demo_docs"
DEMO_SOURCES = REPO / "ingest" / "demo_sources.yaml"
SUMMARY = re.compile(
    r"^main: (\d+) indexed, (\d+) unchanged, 0 removed, 0 failed; (\d+) chunks, \d+ pages"
    r" in \d+\.\ds$",
    re.MULTILINE,
)


def test_shipped_sources_files_load_with_the_workers_loader() -> None:
    demo = load_sources(DEMO_SOURCES)
    (source,) = demo.sources
    assert source.paths == (DEMO_DOCS,) or list(source.paths) == [DEMO_DOCS]
    assert source.collection == "main" and source.schedule == "*/15 * * * *"

    docker = load_sources(REPO / "docker" / "sources.yaml")
    (source,) = docker.sources
    assert [str(p) for p in source.paths] == ["/docs"]
    assert source.collection == "main" and source.schedule == "*/15 * * * *"


def test_make_run_ingest_then_worker_then_a_question(
    tmp_path: Path, ollama_server: OllamaTestServer
) -> None:
    data = tmp_path / "data"
    files = sorted(p.name for p in DEMO_DOCS.iterdir())

    # `make run`: the human-readable report, no JSON, no traceback, exit 0
    done = run_inhouse(["ingest", str(DEMO_DOCS), "--collection", "main"], data,
                       COLUMNS="200")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    shown = done.stdout + done.stderr
    match = SUMMARY.search(shown)
    assert match, shown
    assert int(match[1]) == len(files) and int(match[2]) == 0 and int(match[3]) >= len(files)
    assert "Traceback" not in shown and "{" not in done.stdout
    again = run_inhouse(["ingest", str(DEMO_DOCS), "--collection", "main"], data, COLUMNS="200")
    match = SUMMARY.search(again.stdout + again.stderr)
    assert again.returncode == 0 and match and (match[1], match[2]) == ("0", str(len(files)))

    # the worker then runs demo_sources.yaml over the same documents: nothing to redo
    code, report = run_json(["reindex", "demo"], data, INHOUSE_SOURCES=str(DEMO_SOURCES))
    assert code == 0, report
    (run,) = report["runs"]
    assert run["outcome"] == "succeeded"
    assert run["counts"]["unchanged"] == len(files) and run["counts"]["indexed"] == 0

    # one question over the demo documents
    answer = "Hotels are capped at 140 EUR a night, 190 EUR in London [1]."
    ollama_server.script.push(Reply.answer(answer, "hotel limit"))
    with LiveService(create_app(service_settings(data, ollama_server.url))) as live:
        response = httpx.post(
            f"{live.url}/v1/query",
            json={"question": "What is the nightly hotel limit in London?"},
            timeout=120,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"] == answer and body["cited"] == [1]
    assert body["citations"][0]["source"] == "travel-and-expenses.md"
    prompt = ollama_server.chat_requests()[-1].body["messages"][-1]["content"]
    assert "190 EUR in London" in prompt
