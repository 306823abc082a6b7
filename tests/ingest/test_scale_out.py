"""Past one machine, for real: PostgreSQL, a ``chroma run`` server, two ``inhouse serve``
replicas and three ``inhouse worker`` processes, each with a data dir of its own (as on
separate hosts: they share only the database and Chroma).

A key created on one replica works on the other; 200 files are each indexed exactly once;
a query on either replica finds a document seconds after a worker indexed it; kill -9 of a
worker mid-run converges to the chunks a clean run writes; the schedule fires once per tick
across the three workers. Short leases and polls (env) keep it quick.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ingest.embed import Embedder, EmbedderInfo
from ingest.index import META_SOURCE, ChromaIndex, make_chroma_client
from ingest.settings import IngestSettings
from tests.ingest.cli_helpers import INHOUSE
from tests.ingest.source_helpers import wait_for, write_doc
from tests.scale_servers import (
    PostgresServer,
    free_port,
    postgres_available,
    stop_process,
    wait_http,
)
from tests.service.test_chroma_server_mode import ChromaServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1500),
    pytest.mark.skipif(not postgres_available(), reason="PostgreSQL binaries not installed"),
]

ADMIN = "scale-out-admin-key-0123456789abcdef"
LEASE_S = "3"
BULK_FILES = 200
BIG_FILES = 30
TICK_S = 3


class Stack:
    """The servers and processes of one test module."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pg = PostgresServer().start()
        self.chroma = ChromaServer(root / "chroma", free_port()).start()
        self.bulk, self.big, self.tick = root / "bulk", root / "big", root / "tick"
        for folder in (self.bulk, self.big, self.tick):
            folder.mkdir()
        write_doc(self.tick, 0, 0)
        self.sources = root / "sources.yaml"
        self.sources.write_text(
            "sources:\n"
            f"  - {{name: bulk, paths: [{self.bulk}], collection: bulk, schedule: '0 0 1 1 *'}}\n"
            f"  - {{name: big, paths: [{self.big}], collection: big, schedule: '0 0 1 1 *'}}\n"
            f"  - {{name: tick, paths: [{self.tick}], collection: tick,"
            f" schedule: '* * * * * */{TICK_S}'}}\n"
        )
        secret = os.urandom(32)
        for name in ("api-a", "api-b"):  # replicas share the API keys' HMAC secret
            auth = root / name / "auth"
            auth.mkdir(parents=True, mode=0o700)
            (auth / "hmac.key").write_bytes(secret)
            (auth / "hmac.key").chmod(0o600)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.urls: dict[str, str] = {}
        self.metrics: dict[str, str] = {}

    def env(self, name: str) -> dict[str, str]:
        return {
            **os.environ,
            "INHOUSE_DATA_DIR": str(self.root / name),
            "INHOUSE_DATABASE_URL": self.pg.url,
            "INHOUSE_CHROMA_URL": self.chroma.url,
            "INHOUSE_SOURCES": str(self.sources),
            "INHOUSE_ADMIN_KEY": ADMIN,
            "INHOUSE_QUEUE__LEASE_S": LEASE_S,
            "INHOUSE_QUEUE__POLL_S": "0.3",
            "INHOUSE_EMBEDDED_WORKER": "false",
            "INHOUSE_RETRIEVAL__REFRESH_S": "1",
            "INHOUSE_OLLAMA_HOST": "http://127.0.0.1:9",
            "INHOUSE_PARSE__WORKERS": "1",
            "INHOUSE_SECURITY__RATE_LIMIT": "100000/minute",  # the test polls progress
        }

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [INHOUSE, *args],
            env=self.env(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def upgrade(self) -> None:
        done = subprocess.run(
            [INHOUSE, "db", "upgrade"], env=self.env("admin"), capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr

    def serve(self, name: str) -> None:
        port = free_port()
        self._spawn(name, ["serve", "--port", str(port)])
        self.urls[name] = f"http://127.0.0.1:{port}"

    def worker(self, name: str) -> None:
        port = free_port()
        self._spawn(name, ["worker", "--concurrency", "1", "--metrics-port", str(port)])
        self.metrics[name] = f"http://127.0.0.1:{port}/metrics"

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def close(self) -> None:
        for proc in self.procs.values():
            stop_process(proc)
        self.chroma.stop()
        self.pg.remove()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    made = Stack(tmp_path_factory.mktemp("scale"))
    try:
        made.upgrade()
        for name in ("api-a", "api-b"):
            made.serve(name)
        for name in ("worker-1", "worker-2", "worker-3"):
            made.worker(name)
        for name in ("api-a", "api-b"):
            wait_http(made.urls[name] + "/healthz", 240)
        for url in made.metrics.values():
            wait_http(url, 240)
        yield made
    finally:
        made.close()


def _admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


def _sources(stack: Stack, api: str) -> dict[str, Any]:
    got = httpx.get(stack.urls[api] + "/v1/sources", headers=_admin(), timeout=30)
    assert got.status_code == 200, got.text
    return {s["name"]: s for s in got.json()["sources"]}


def _reindex(stack: Stack, api: str, name: str) -> str:
    got = httpx.post(
        stack.urls[api] + f"/v1/sources/{name}/reindex", headers=_admin(), json={}, timeout=30
    )
    assert got.status_code == 202, got.text
    return str(got.json()["run_id"])


def _finished_run(stack: Stack, api: str, name: str, run_id: str) -> dict[str, Any] | None:
    for run in _sources(stack, api)[name]["last_runs"]:
        if run["id"] == run_id and run["outcome"] != "running":
            return dict(run)
    return None


def _indexed_total(stack: Stack, workers: list[str] | None = None) -> float:
    total = 0.0
    for name in workers or list(stack.metrics):
        text = httpx.get(stack.metrics[name], timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "inhouse_ingest_files_total" and (
                    sample.labels.get("status") == "indexed"
                ):
                    total += sample.value
    return total


def _chunks(stack: Stack, collection: str) -> dict[str, str]:
    """Chunk id -> source path of a collection on the Chroma server."""
    settings = IngestSettings(data_dir=stack.root / "reader", chroma_url=stack.chroma.url)
    index = ChromaIndex(
        make_chroma_client(settings), EmbedderInfo("sentence-transformers/all-MiniLM-L6-v2", 384)
    )
    got = index.collection(collection).get(include=["metadatas"])
    return {
        cid: str((meta or {}).get(META_SOURCE)) for cid, meta in zip(got["ids"], got["metadatas"])
    }


def test_a_key_created_on_one_replica_works_on_the_other(stack: Stack) -> None:
    made = httpx.post(
        stack.urls["api-a"] + "/v1/admin/keys",
        headers=_admin(),
        json={"name": "analyst", "scopes": ["query", "ingest"]},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    me = httpx.get(
        stack.urls["api-b"] + "/v1/me", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert me.status_code == 200, me.text
    wrong = httpx.get(
        stack.urls["api-b"] + "/v1/me", headers={"Authorization": f"Bearer {key}x"}, timeout=30
    )
    assert wrong.status_code == 401


def test_200_files_are_each_indexed_once_across_three_workers(stack: Stack) -> None:
    for i in range(BULK_FILES):
        write_doc(stack.bulk, i, 0, paragraphs=1)

    def tick_indexed() -> bool:  # the tick source's one file is indexed before the baseline
        runs = _sources(stack, "api-b")["tick"]["last_runs"]
        return any(r["counts"]["indexed"] for r in runs if r["outcome"] != "running")

    wait_for(tick_indexed, 300, "the tick source's first run")
    before = _indexed_total(stack)
    run_id = _reindex(stack, "api-a", "bulk")
    busy: set[int] = set()

    def done() -> dict[str, Any] | None:
        running = _sources(stack, "api-b")["bulk"]["running"]
        if running is not None:
            busy.add(running["progress"]["workers"] or 0)
        return _finished_run(stack, "api-b", "bulk", run_id)

    run = wait_for(done, 600, "the bulk run")
    assert isinstance(run, dict)
    assert run["outcome"] == "succeeded", run
    assert run["counts"] == {"indexed": BULK_FILES, "unchanged": 0, "removed": 0, "failed": 0}
    assert max(busy) >= 2, busy  # progress aggregated over several workers at once
    assert _indexed_total(stack) - before == BULK_FILES  # each file indexed exactly once
    chunks = _chunks(stack, "bulk")
    assert sorted(set(chunks.values())) == sorted(p.name for p in stack.bulk.iterdir())
    assert len(chunks) == BULK_FILES  # one chunk per small file: no duplicate, no orphan
    logs = [stack.log(name) for name in ("worker-1", "worker-2", "worker-3")]
    assert sum(log.count(f"run {run_id}: ") for log in logs) == 1  # one discovery
    assert sum(f"run {run_id} of bulk succeeded" in log for log in logs) == 1  # one finalise


def _dense(stack: Stack, collection: str, embedder: Embedder, text: str) -> dict[str, Any]:
    """What Chroma itself answers for ``text``, and the stored zebra vector's similarity."""
    settings = IngestSettings(data_dir=stack.root / "reader", chroma_url=stack.chroma.url)
    index = ChromaIndex(make_chroma_client(settings), embedder.info)
    vector = embedder.encode([text])[0]
    hits = index.query(collection, vector, 6)
    stored = index.collection(collection).get(
        where={META_SOURCE: "zebra.md"}, include=["embeddings"]
    )
    cosines = [float(np.dot(vector, v) / np.linalg.norm(v)) for v in stored["embeddings"]]
    return {"top": [str(h.metadata.get(META_SOURCE)) for h in hits], "zebra_cosine": cosines}


def test_a_query_on_either_replica_finds_a_document_seconds_after_indexing(
    stack: Stack, embedder: Embedder
) -> None:
    (stack.bulk / "zebra.md").write_text(
        "# Zebra crossing budget\n\nThe zebra crossing repaint budget is 7,340 euros.\n"
    )
    run_id = _reindex(stack, "api-b", "bulk")
    wait_for(lambda: _finished_run(stack, "api-a", "bulk", run_id), 300, "the zebra run")
    indexed_at = time.monotonic()
    seen: dict[str, float] = {}
    last: dict[str, list[str]] = {}

    def found() -> bool:
        for api in ("api-a", "api-b"):
            if api in seen:
                continue
            got = httpx.post(
                stack.urls[api] + "/v1/query",
                headers=_admin(),
                json={
                    "question": "zebra crossing repaint budget",
                    "mode": "extract",
                    "collections": ["bulk"],
                },
                timeout=60,
            )
            assert got.status_code == 200, got.text
            last[api] = [c["source"] for c in got.json()["citations"]]
            if "zebra.md" in last[api]:
                seen[api] = time.monotonic() - indexed_at
        return len(seen) == 2

    try:
        wait_for(found, 20, "the new document on both replicas")
    except AssertionError:
        direct = _dense(stack, "bulk", embedder, "zebra crossing repaint budget")
        raise AssertionError(f"not found; replicas: {last}; Chroma itself: {direct}") from None
    assert max(seen.values()) < 20, seen


def test_kill_9_of_a_worker_mid_run_converges_to_a_clean_run(
    stack: Stack, embedder: Embedder
) -> None:
    for i in range(BIG_FILES):
        write_doc(stack.big, i, 0, paragraphs=24)
    run_id = _reindex(stack, "api-a", "big")

    def progressed() -> bool:
        running = _sources(stack, "api-a")["big"]["running"]
        return bool(running and running["progress"]["files_done"] >= 5)

    wait_for(progressed, 400, "progress before kill -9")
    victim = stack.procs["worker-1"]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    run = wait_for(lambda: _finished_run(stack, "api-b", "big", run_id), 600, "the big run")
    assert isinstance(run, dict)
    assert run["outcome"] == "succeeded", run
    assert run["counts"]["indexed"] == BIG_FILES
    killed = _chunks(stack, "big")

    from ingest.pipeline import IngestPipeline

    clean_settings = IngestSettings(data_dir=stack.root / "clean", chroma_url=stack.chroma.url)
    pipeline = IngestPipeline(clean_settings, embedder=embedder)
    try:
        report = pipeline.run([stack.big], "bigclean")
    finally:
        pipeline.close()
    assert report.counts()["indexed"] == BIG_FILES
    clean = _chunks(stack, "bigclean")

    def shape(chunks: dict[str, str]) -> list[tuple[str, str]]:
        # chunk id = document id (collection-specific) : position : text hash
        return sorted((path, cid.split(":", 1)[1]) for cid, path in chunks.items())

    assert shape(killed) == shape(clean)  # no duplicate, no orphan, nothing missing


def test_the_schedule_fires_once_per_tick_across_three_workers(stack: Stack) -> None:
    if "worker-1b" not in stack.procs:  # three workers again after the kill -9
        stack.worker("worker-1b")
        wait_http(stack.metrics["worker-1b"], 240)
    time.sleep(4 * TICK_S)
    runs = _sources(stack, "api-b")["tick"]["last_runs"]
    scheduled = sorted(r["started_at"] for r in runs if r["trigger"] == "schedule")
    assert len(scheduled) >= 3, runs
    from datetime import datetime

    starts = [datetime.fromisoformat(s) for s in scheduled]
    gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
    assert min(gaps) > TICK_S / 2, gaps  # never two runs for one tick
    logs = "".join(stack.log(n) for n in ("worker-2", "worker-3", "worker-1b"))
    assert "Traceback" not in logs
