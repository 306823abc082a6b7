"""Query-service benchmarks: figures, not asserts (not part of ``make test``).

1. Retrieval latency (query embedding + Chroma search + lexical search + fusion, through
   ``Retriever.search``) at 10k and 100k chunks: synthetic chunks with random unit vectors
   and ~120 words drawn Zipf-wise from a 20k-word vocabulary that contains the questions'
   words (so common words have long posting lists), the question embedded for real by
   all-MiniLM-L6-v2. Hybrid (the default) and dense alone; the first hybrid query builds
   the lexical index from Chroma (its time is printed). Target: p95 <= 50 ms at 100k.
2. Time-to-first-token overhead of the service over the raw model stream, at 1 and 32
   concurrent streams. The Ollama test server answers instantly; "raw" is a client
   streaming ``/api/chat`` from it directly, "service" is a client streaming
   ``/v1/query`` (``inhouse serve`` in its own process, retrieval over a small real index,
   the real OllamaBackend). TTFT = request sent -> first model delta received.
   Target: overhead p50 <= 30 ms.

Usage::

    .venv/bin/python -m tests.bench.query_bench                 # everything
    .venv/bin/python -m tests.bench.query_bench --skip-ttft --sizes 10000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ingest  # noqa: F401  (zero-egress environment first)

QUESTIONS = [
    "How many vacation days do new employees get?",
    "Who approves business trips shorter than 500 km?",
    "When are salaries paid each month?",
    "What is the policy on remote work?",
    "How do I request parental leave?",
    "Which expenses need a receipt?",
    "What are the office opening hours?",
    "How is overtime compensated for part-time staff?",
    "Where do I report a security incident?",
    "What is the notice period after probation?",
]


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 (milliseconds in, milliseconds out)."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def fmt(samples: list[float]) -> str:
    p50, p95 = percentiles(samples)
    return f"p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   (n={len(samples)})"


# -- 1. retrieval ---------------------------------------------------------------------------
def bench_retrieval(workdir: Path, sizes: list[int], queries: int) -> None:
    import numpy as np
    from anyio import to_thread

    from ingest.embed import Embedder
    from ingest.index import (
        META_COLLECTION,
        META_DOCUMENT_ID,
        META_PAGE_END,
        META_PAGE_START,
        META_POSITION,
        META_SOURCE,
        META_TITLE,
        ChromaIndex,
        StoredChunk,
        make_chroma_client,
    )
    from ingest.manifest import Manifest
    from ingest.settings import IngestSettings
    from service.api.deps import QUERY_TORCH_THREADS
    from service.caller import ANONYMOUS
    from service.retrieval import Retriever

    settings = IngestSettings(data_dir=workdir / "retrieval")
    client = make_chroma_client(settings)
    embed = settings.embed
    if embed.threads is None:  # as the service runs it
        embed = embed.model_copy(update={"threads": QUERY_TORCH_THREADS})
    embedder = Embedder(embed)
    embedder.encode(["warm-up"])
    index = ChromaIndex(client, embedder.info)
    from ingest.settings import RetrievalSettings

    retriever = Retriever(client, embedder, Manifest.open(settings))
    dense_only = Retriever(
        client, embedder, Manifest.open(settings), settings=RetrievalSettings(mode="dense")
    )
    rng = np.random.default_rng(7)
    vocabulary = sorted({w.strip("?.,").lower() for q in QUESTIONS for w in q.split()})
    vocabulary += [f"w{i:05d}" for i in range(20_000 - len(vocabulary))]
    rng.shuffle(vocabulary)
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()

    def filler() -> str:
        return " ".join(vocabulary[i] for i in rng.choice(len(vocabulary), 120, p=weights))

    have = 0
    print("\n== Retrieval: query embedding + search (one collection, k=6) ==")
    for size in sorted(sizes):
        started = time.perf_counter()
        while have < size:
            batch = min(5000, size - have)
            vectors = rng.standard_normal((batch, embedder.info.dimension)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            chunks = [
                StoredChunk(
                    id=f"doc{(have + i) // 20}:{(have + i) % 20:05d}:bench",
                    text=f"chunk {have + i}: {filler()}",
                    metadata={
                        META_COLLECTION: "bench",
                        META_DOCUMENT_ID: f"doc{(have + i) // 20}",
                        META_SOURCE: f"docs/doc{(have + i) // 20}.pdf",
                        META_TITLE: f"Document {(have + i) // 20}",
                        META_PAGE_START: (have + i) % 20 + 1,
                        META_PAGE_END: (have + i) % 20 + 1,
                        META_POSITION: (have + i) % 20,
                    },
                )
                for i in range(batch)
            ]
            index.upsert("bench", chunks, vectors)
            have += batch
        print(f"-- {size:,} chunks (filled in {time.perf_counter() - started:.0f} s)")
        index.settle("bench")  # as an ingest run ends
        t0 = time.perf_counter()
        asyncio.run(retriever.search("warm-up", ["bench"], 6, caller=ANONYMOUS))
        print(f"   lexical index brought up to date from Chroma: {time.perf_counter() - t0:.1f} s")

        async def measure(
            retriever: Retriever,
        ) -> tuple[list[float], list[float], list[float]]:
            total, embed, search = [], [], []
            for i in range(queries + 10):
                question = f"{QUESTIONS[i % len(QUESTIONS)]} ({i})"
                t0 = time.perf_counter()
                await retriever.search(question, ["bench"], 6, caller=ANONYMOUS)
                t1 = time.perf_counter()
                vector = await to_thread.run_sync(embedder.encode, [question])
                t2 = time.perf_counter()
                await to_thread.run_sync(index.query, "bench", vector[0], 6)
                t3 = time.perf_counter()
                if i >= 10:  # warm-up excluded
                    total.append((t1 - t0) * 1000)
                    embed.append((t2 - t1) * 1000)
                    search.append((t3 - t2) * 1000)
            return total, embed, search

        total, embed, search = asyncio.run(measure(retriever))
        print(f"   hybrid retrieval (all):     {fmt(total)}")
        print(f"     embedding alone:          {fmt(embed)}")
        print(f"     Chroma search alone:      {fmt(search)}")
        total, _, _ = asyncio.run(measure(dense_only))
        print(f"   dense-only retrieval:       {fmt(total)}")
        # random vectors seldom rank neighbours together: the read that makes a passage of
        # them (``service.passages``: the chunk between two joined ones) is timed on its own,
        # at its largest (six passages, each missing one chunk)
        reads = []
        for _ in range(queries):
            wanted = {f"doc{d}": [5] for d in rng.choice(have // 20, 6, replace=False)}
            t0 = time.perf_counter()
            found = retriever._read_positions("bench", wanted)
            reads.append((time.perf_counter() - t0) * 1000)
            assert len(found) == 6
        print(f"   passage read-in (6 chunks): {fmt(reads)}")


# -- 2. time to first token ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[str], timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.3)


@contextlib.contextmanager
def spawn(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


async def first_delta_raw(client: Any, url: str, prompt: str) -> float:
    body = {
        "model": "deepseek-r1:8b",
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "think": True,
    }
    t0 = time.perf_counter()
    async with client.stream("POST", f"{url}/api/chat", json=body) as response:
        async for line in response.aiter_lines():
            message = json.loads(line).get("message", {})
            if message.get("thinking") or message.get("content"):
                return (time.perf_counter() - t0) * 1000
    raise RuntimeError("no delta")


async def first_delta_service(client: Any, url: str, question: str) -> tuple[float, float]:
    """(time to the sources event, time to the first model delta) in ms."""
    body = {"question": question, "stream": True, "include_reasoning": True}
    t0 = time.perf_counter()
    sources_ms = 0.0
    async with client.stream("POST", f"{url}/v1/query", json=body) as response:
        async for line in response.aiter_lines():
            if line == "event: sources":
                sources_ms = (time.perf_counter() - t0) * 1000
            elif line in ("event: reasoning", "event: token"):
                return sources_ms, (time.perf_counter() - t0) * 1000
            elif line == "event: error":
                raise RuntimeError(f"service error: {await response.aread()!r}")
    raise RuntimeError("no delta")


def bench_ttft(workdir: Path, levels: list[int], rounds_override: int = 0) -> None:
    import httpx

    from tests.service.api_support import build_index

    data_dir = workdir / "service"
    build_index(data_dir)
    ollama_port, service_port = free_port(), free_port()
    ollama_url = f"http://127.0.0.1:{ollama_port}"
    service_url = f"http://127.0.0.1:{service_port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "INHOUSE_DATA_DIR": str(data_dir),
        "OLLAMA_HOST": ollama_url,
        "INHOUSE_AUTH": "disabled",
        "INHOUSE_DEMO_MODEL__USE": "never",
        "INHOUSE_EMBEDDED_WORKER": "false",
    }
    serve = "import sys; from service.cli import main; sys.exit(main())"
    ollama_cmd = [sys.executable, "-m", "tests.service.ollama_server", "--port", str(ollama_port)]
    service_cmd = [sys.executable, "-c", serve, "serve", "--port", str(service_port)]
    with (
        spawn(ollama_cmd, env) as ollama,
        spawn(service_cmd + ["--log-level", "error"], env) as svc,
    ):
        wait_http(f"{ollama_url}/api/version", ollama)
        wait_http(f"{service_url}/readyz", svc)
        prompt = "Sources:\n\n[1] Handbook, p. 1\n" + "Vacation policy text. " * 40
        print("\n== Time to first model delta: raw model stream vs through the service ==")

        async def run_level(concurrency: int) -> None:
            rounds = rounds_override or max(5, 200 // concurrency)
            limits = httpx.Limits(max_connections=concurrency * 2)
            async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                for i in range(3):  # warm-up
                    await first_delta_raw(client, ollama_url, prompt)
                    await first_delta_service(client, service_url, QUESTIONS[i])
                raw: list[float] = []
                sources: list[float] = []
                service: list[float] = []
                for r in range(rounds):
                    raw += await asyncio.gather(
                        *(first_delta_raw(client, ollama_url, prompt) for _ in range(concurrency))
                    )
                    got = await asyncio.gather(
                        *(
                            first_delta_service(
                                client, service_url, f"{QUESTIONS[(r + j) % len(QUESTIONS)]}"
                            )
                            for j in range(concurrency)
                        )
                    )
                    sources += [s for s, _ in got]
                    service += [t for _, t in got]
            print(f"-- {concurrency} concurrent stream(s)")
            print(f"   raw model stream TTFT:      {fmt(raw)}")
            print(f"   service TTFT:               {fmt(service)}")
            print(f"     service: sources event at {fmt(sources)}")
            raw50, raw95 = percentiles(raw)
            svc50, svc95 = percentiles(service)
            print(
                f"   overhead (service - raw):   p50 {svc50 - raw50:7.1f} ms"
                f"   p95 {svc95 - raw95:7.1f} ms"
            )

        for level in levels:
            asyncio.run(run_level(level))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200, help="retrieval queries per size")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--rounds", type=int, default=0, help="TTFT rounds (default: auto)")
    parser.add_argument("--skip-retrieval", action="store_true")
    parser.add_argument("--skip-ttft", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(f"CPUs: {os.cpu_count()}, load average (1 min) at start: {load:.2f}")
    with tempfile.TemporaryDirectory(prefix="inhouse-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        if not args.skip_retrieval:
            bench_retrieval(workdir, args.sizes, args.queries)
        if not args.skip_ttft:
            bench_ttft(workdir, args.levels, args.rounds)


if __name__ == "__main__":
    main()
