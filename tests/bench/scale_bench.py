"""Scale-out benchmark: queued ingest with 1, 2 and 3 worker processes, and query latency
through two API replicas, against one PostgreSQL and one ``chroma run`` server.

    .venv/bin/python -m tests.bench.scale_bench ../shared/data/sec10q/docs [--limit 6]

Per round (a fresh database and collection each): K ``inhouse worker --concurrency 1``
processes are started and warmed (imports, encoder), then one run of the copied filings is
queued and timed from the enqueue to the finalised run. Printed: wall time, files/s,
pages/s, files per worker and per-worker throughput (each worker's own
``inhouse_ingest_files_total``). Then the database and Chroma time per file, measured
apart with the figures of the last round (the queue's claim + completion and the manifest
writes of one file; one file's upsert of its average chunk count + the delete of other
versions), so that scaling on more cores can be projected: the shared servers' share of a
file is small next to parsing and embedding, which scale with worker cores. Last, two
``inhouse serve`` replicas answer ``/v1/query`` (mode extract: retrieval + extraction, no
model) from 16 concurrent clients, alternating replicas: p50/p95 latency.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from tests.ingest.cli_helpers import INHOUSE
from tests.scale_servers import PostgresServer, free_port, stop_process, wait_http
from tests.service.test_chroma_server_mode import ChromaServer

ADMIN = "scale-bench-admin-key-0123456789abcdef"
QUESTIONS = [
    "What was total net sales in the quarter?",
    "How much cash and cash equivalents did the company hold?",
    "What were research and development expenses?",
    "What risks does the company describe about supply chains?",
    "How many shares were repurchased?",
    "What was the gross margin percentage?",
    "What is the effective tax rate?",
    "How did operating income change compared with the prior year?",
]


class Bench:
    def __init__(self, root: Path, docs: Path) -> None:
        self.root, self.docs = root, docs
        self.pg = PostgresServer().start()
        self.chroma = ChromaServer(root / "chroma", free_port()).start()
        self.procs: list[subprocess.Popen[bytes]] = []

    def env(self, name: str, database: str, collection: str) -> dict[str, str]:
        sources = self.root / f"sources-{collection}.yaml"
        sources.write_text(
            f"sources:\n  - {{name: filings, paths: [{self.docs}], collection: {collection},"
            " schedule: '0 0 1 1 *'}\n"
        )
        return {
            **os.environ,
            "INHOUSE_DATA_DIR": str(self.root / name),
            "INHOUSE_DATABASE_URL": self.pg.url.rsplit("/", 1)[0] + f"/{database}",
            "INHOUSE_CHROMA_URL": self.chroma.url,
            "INHOUSE_SOURCES": str(sources),
            "INHOUSE_ADMIN_KEY": ADMIN,
            "INHOUSE_EMBEDDED_WORKER": "false",
            "INHOUSE_OLLAMA_HOST": "http://127.0.0.1:9",
            "INHOUSE_QUEUE__POLL_S": "0.5",
        }

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.pg.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]

    def spawn(self, args: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [INHOUSE, *args],
            env=env,
            stdout=(self.root / f"{log}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            stop_process(proc)
        self.chroma.stop()
        self.pg.remove()


def _indexed(url: str) -> float:
    text = httpx.get(url, timeout=10).text
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "inhouse_ingest_files_total" and s.labels.get("status") == "indexed"
    )


def ingest_round(bench: Bench, workers: int) -> dict[str, Any]:
    database, collection = f"bench{workers}", f"filings{workers}"
    bench.create_database(database)
    admin_env = bench.env("admin", database, collection)
    subprocess.run([INHOUSE, "db", "upgrade"], env=admin_env, check=True, capture_output=True)
    ports, procs = [], []
    for i in range(workers):
        port = free_port()
        env = bench.env(f"w{workers}-{i}", database, collection)
        procs.append(
            bench.spawn(
                ["worker", "--concurrency", "1", "--metrics-port", str(port)],
                env,
                f"w{workers}-{i}",
            )
        )
        ports.append(f"http://127.0.0.1:{port}/metrics")
    for url in ports:
        wait_http(url, 300)
    time.sleep(5)  # the workers' idle polls settle; the encoder loads on the first file
    os.environ.update({k: v for k, v in admin_env.items() if k.startswith("INHOUSE_")})
    from ingest.db import open_database
    from ingest.manifest import Manifest
    from ingest.queue_dispatch import QueueDispatch
    from ingest.runs import RunStore
    from ingest.settings import IngestSettings
    from ingest.sources import load_sources
    from ingest.workqueue import WorkQueue

    settings = IngestSettings()
    db = open_database(settings)
    runs = RunStore(Manifest(db))
    source = load_sources(Path(admin_env["INHOUSE_SOURCES"])).sources[0]
    started = time.monotonic()
    run_id = QueueDispatch(WorkQueue(db), runs).submit(source, trigger="manual")
    while True:
        record = runs.get(run_id, with_failures=False)
        if record is not None and record.outcome != "running":
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    per_worker = [_indexed(url) for url in ports]
    pages = sum(r.page_count or 0 for r in runs.manifest.documents(collection))
    for proc in procs:
        stop_process(proc)
    db.dispose()
    files = record.counts["indexed"]
    return {
        "workers": workers,
        "outcome": record.outcome,
        "files": files,
        "pages": pages,
        "wall_s": elapsed,
        "files_per_s": files / elapsed,
        "pages_per_s": pages / elapsed,
        "per_worker_files": per_worker,
        "per_worker_files_per_s": [n / elapsed for n in per_worker],
        "database": database,
        "collection": collection,
    }


def shared_costs(bench: Bench, last: dict[str, Any]) -> dict[str, float]:
    """Database and Chroma time for one file, measured apart (see the module docstring)."""
    from ingest.db import open_database
    from ingest.embed import EmbedderInfo
    from ingest.index import ChromaIndex, StoredChunk, make_chroma_client
    from ingest.manifest import Manifest
    from ingest.settings import IngestSettings
    from ingest.workqueue import NewItem, WorkQueue

    bench.create_database("costs")
    env = bench.env("costs", "costs", "costs")
    os.environ.update({k: v for k, v in env.items() if k.startswith("INHOUSE_")})
    settings = IngestSettings()
    db = open_database(settings)
    queue, manifest = WorkQueue(db), Manifest(db)
    n = 200
    queue.create_run("r", "s", "costs", full=False, spec={"paths": []})
    item = queue.claim("me")
    assert item is not None
    queue.add_discovered(
        item, "me", [NewItem("index", f"d{i}", "/r", f"f{i}") for i in range(n)], unchanged=0
    )
    started = time.perf_counter()
    for i in range(n):
        got = queue.claim("me", run_id="r", kinds=("index",))
        assert got is not None
        manifest.get(f"d{i}")
        manifest.begin_document(
            doc_id=f"d{i}", collection="costs", root="/r", path=f"f{i}", size=1, mtime_ns=1,
            pending_hash="h", embedder="e",
        )  # fmt: skip
        manifest.finish_indexed(
            f"d{i}", content_hash="h", chunk_count=10, file_type="pdf", title="t", page_count=1
        )
        queue.complete(got, "me", status="indexed", chunks=10)
    db_s = (time.perf_counter() - started) / n
    db.dispose()

    chunks_per_file = max(1, round(last["chunks"] / max(last["files"], 1)))
    index = ChromaIndex(make_chroma_client(settings), EmbedderInfo("bench", 384))
    rng = np.random.default_rng(0)
    reps = 10
    started = time.perf_counter()
    for rep in range(reps):
        stored = [
            StoredChunk(
                id=f"doc{rep}:{p:05d}:x",
                text="lorem ipsum " * 80,
                metadata={"document_id": f"doc{rep}", "doc_hash": "h", "position": p},
            )
            for p in range(chunks_per_file)
        ]
        vectors = rng.standard_normal((chunks_per_file, 384)).astype(np.float32)
        index.upsert("costs", stored, vectors)
        index.delete_document("costs", f"doc{rep}", keep_doc_hash="h")
    chroma_s = (time.perf_counter() - started) / reps
    return {"db_s_per_file": db_s, "chroma_s_per_file": chroma_s, "chunks": chunks_per_file}


def query_latency(bench: Bench, last: dict[str, Any], clients: int, total: int) -> dict[str, Any]:
    urls = []
    secret = os.urandom(32)
    for name in ("api-a", "api-b"):  # replicas share the API keys' HMAC secret
        auth = bench.root / name / "auth"
        auth.mkdir(parents=True, mode=0o700)
        (auth / "hmac.key").write_bytes(secret)
        (auth / "hmac.key").chmod(0o600)
    for name in ("api-a", "api-b"):
        port = free_port()
        bench.spawn(
            ["serve", "--port", str(port)],
            bench.env(name, last["database"], last["collection"]),
            name,
        )
        urls.append(f"http://127.0.0.1:{port}")
    for url in urls:
        wait_http(url + "/healthz", 300)  # /readyz also wants a model server
    headers = {"Authorization": f"Bearer {ADMIN}"}
    body = {"mode": "extract", "collections": [last["collection"]]}
    for url in urls:  # warm: the encoder, the lexical mirror
        httpx.post(url + "/v1/query", headers=headers, json={**body, "question": "warm"},
                   timeout=300)  # fmt: skip
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def client() -> None:
        with httpx.Client(timeout=300) as http:
            for i in counter:
                started = time.perf_counter()
                got = http.post(
                    urls[i % 2] + "/v1/query",
                    headers=headers,
                    json={**body, "question": QUESTIONS[i % len(QUESTIONS)]},
                )
                got.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return {"queries": len(latencies), "p50_s": q[49], "p95_s": q[94], "qps": len(latencies) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("docs", type=Path)
    parser.add_argument("--limit", type=int, default=20, help="first N files (sorted)")
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--queries", type=int, default=160)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="inhouse-scale-bench-"))
    docs = root / "docs"
    docs.mkdir()
    for path in sorted(args.docs.iterdir())[: args.limit]:
        shutil.copy2(path, docs / path.name)  # a copy: never write into the shared data
    bench = Bench(root, docs)
    try:
        rounds = [ingest_round(bench, int(k)) for k in args.workers.split(",")]
        print(f"uptime: {os.getloadavg()}  cores: {os.cpu_count()}  files: {args.limit}")
        print("workers  wall_s  files/s  pages/s  files per worker  files/s per worker")
        for r in rounds:
            print(
                f"{r['workers']:>7}  {r['wall_s']:6.1f}  {r['files_per_s']:7.3f}"
                f"  {r['pages_per_s']:7.2f}  {r['per_worker_files']}"
                f"  {[round(x, 3) for x in r['per_worker_files_per_s']]}  ({r['outcome']})"
            )
        last = rounds[-1]
        from ingest.embed import EmbedderInfo
        from ingest.index import ChromaIndex, make_chroma_client
        from ingest.settings import IngestSettings

        reader = ChromaIndex(
            make_chroma_client(IngestSettings(data_dir=root / "reader",
                                              chroma_url=bench.chroma.url)),
            EmbedderInfo("sentence-transformers/all-MiniLM-L6-v2", 384),
        )  # fmt: skip
        last["chunks"] = reader.count(last["collection"])
        costs = shared_costs(bench, last)
        print(
            f"per file: database {costs['db_s_per_file'] * 1000:.1f} ms (claim, manifest,"
            f" completion), Chroma {costs['chroma_s_per_file'] * 1000:.1f} ms"
            f" (upsert {costs['chunks']} chunks + delete of other versions);"
            f" wall per file with 1 worker {rounds[0]['wall_s'] / max(rounds[0]['files'], 1):.1f} s"
        )
        lat = query_latency(bench, last, args.clients, args.queries)
        print(
            f"query (2 replicas, {args.clients} clients, {lat['queries']} queries, extract):"
            f" p50 {lat['p50_s'] * 1000:.0f} ms, p95 {lat['p95_s'] * 1000:.0f} ms,"
            f" {lat['qps']:.1f} queries/s"
        )
    finally:
        bench.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
