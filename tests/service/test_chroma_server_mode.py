"""Server-mode Chroma for real: ``chroma run`` on a loopback port, ingest and query over HTTP.

This is the path the docker stack uses (``INHOUSE_CHROMA_URL=http://chroma:8000``): the
pipeline writes through ``chromadb.HttpClient``, the service's retriever reads through it,
and the data lives in the server's folder (it survives a server restart), not in the
embedded store under the data dir.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest

from ingest.embed import Embedder
from ingest.index import META_SOURCE
from ingest.pipeline import IngestPipeline
from ingest.settings import IngestSettings
from service.caller import ANONYMOUS
from service.retrieval import Retriever

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChromaServer:
    """A ``chroma run`` child process from the chromadb package."""

    def __init__(self, path: Path, port: int) -> None:
        self.path, self.port = path, port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ChromaServer:
        chroma = Path(sys.executable).with_name("chroma")
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        args = [str(chroma), "run", "--path", str(self.path), "--host", "127.0.0.1"]
        self.proc = subprocess.Popen(
            [*args, "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("chroma run did not answer its heartbeat in time")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "chroma-server", _free_port()).start()
    try:
        yield server
    finally:
        server.stop()


def _docs(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "vacation.md").write_text(
        "# Vacation policy\n\nEmployees receive 27 days of paid vacation per year."
        " Up to five unused days carry over to the next year.\n"
    )
    (root / "parking.txt").write_text(
        "Parking. The underground garage opens at 6:30 and closes at 22:00 on weekdays.\n"
    )
    (root / "expenses.md").write_text(
        "# Travel expenses\n\nMeals while travelling are reimbursed up to 45 euros per day.\n"
    )
    return root


def _search(settings: IngestSettings, embedder: Embedder, question: str) -> list[str]:
    from ingest.index import make_chroma_client
    from ingest.manifest import Manifest

    manifest = Manifest.open(settings)
    try:
        retriever = Retriever(make_chroma_client(settings), embedder, manifest)
        hits = anyio.run(partial(retriever.search, caller=ANONYMOUS), question, ["handbook"], 3)
    finally:
        manifest.close()
    return [str(hit.metadata[META_SOURCE]) for hit in hits]


def test_ingest_and_query_through_chroma_server(
    chroma_server: ChromaServer,
    tmp_path: Path,
    data_dir: Path,
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INHOUSE_CHROMA_URL", chroma_server.url)
    settings = IngestSettings()
    assert settings.chroma_url == chroma_server.url
    docs = _docs(tmp_path / "docs")
    pipeline = IngestPipeline(settings, embedder=embedder)
    try:
        report = pipeline.run([docs], "handbook")
    finally:
        pipeline.close()
    assert report.counts()["indexed"] == 3 and report.chunks_written >= 3
    assert not settings.chroma_dir.exists()  # nothing went to the embedded store
    assert any(chroma_server.path.rglob("*.sqlite3"))  # it went to the server's folder

    assert _search(settings, embedder, "How many vacation days do I get?")[0] == "vacation.md"
    assert _search(settings, embedder, "When does the garage open?")[0] == "parking.txt"

    # The server owns the data: it survives a restart on the same path.
    chroma_server.stop()
    restarted = ChromaServer(chroma_server.path, _free_port()).start()
    try:
        monkeypatch.setenv("INHOUSE_CHROMA_URL", restarted.url)
        moved = IngestSettings()
        assert _search(moved, embedder, "meal allowance on trips")[0] == "expenses.md"
    finally:
        restarted.stop()


def _retriever(settings: IngestSettings, embedder: Embedder, **retrieval: object) -> Retriever:
    from ingest.index import make_chroma_client
    from ingest.manifest import Manifest
    from ingest.settings import RetrievalSettings

    return Retriever(
        make_chroma_client(settings),
        embedder,
        Manifest.open(settings),
        settings=RetrievalSettings(**retrieval),  # type: ignore[arg-type]
        lexical_dir=settings.data_dir / "lexical",
    )


def test_hosts_sharing_a_chroma_server_agree_and_see_a_worker_s_writes(
    chroma_server: ChromaServer, tmp_path: Path, embedder: Embedder
) -> None:
    """Replicas share only the Chroma server: each derives its own lexical index from it,
    finds the same results, and sees chunks a separate ingest process writes, unrestarted."""
    from tests.ingest.cli_helpers import run_json

    docs = _docs(tmp_path / "docs")
    (docs / "codes.md").write_text(
        "# Codes\n\nForm HR-2231 requests parking; form HR-2232 requests vacation.\n"
    )
    host_a = IngestSettings(data_dir=tmp_path / "host-a", chroma_url=chroma_server.url)
    pipeline = IngestPipeline(host_a, embedder=embedder)
    try:
        pipeline.run([docs], "handbook")
    finally:
        pipeline.close()
    host_b = IngestSettings(data_dir=tmp_path / "host-b", chroma_url=chroma_server.url)
    a, b = _retriever(host_a, embedder), _retriever(host_b, embedder)

    def ids(retriever: Retriever, question: str) -> list[str]:
        hits = anyio.run(partial(retriever.search, caller=ANONYMOUS), question, ["handbook"], 3)
        return [hit.id for hit in hits]

    for question in ("form HR-2231", '"paid vacation"', "garage opening hours"):
        assert ids(a, question) == ids(b, question)
    assert any((host_b.data_dir / "lexical").rglob("sync.json"))  # B derived its own

    lexical_a = _retriever(host_a, embedder, mode="lexical")
    assert "bicycle" not in " ".join(
        h.text
        for h in anyio.run(partial(lexical_a.search, caller=ANONYMOUS), "bicycle", ["handbook"], 3)
    )
    (docs / "bikes.md").write_text("# Bikes\n\nBicycle racks are behind building C.\n")
    code, report = run_json(
        ["ingest", str(docs), "--collection", "handbook"],
        tmp_path / "worker",
        INHOUSE_CHROMA_URL=chroma_server.url,
    )
    assert code == 0, report

    hits = anyio.run(partial(lexical_a.search, caller=ANONYMOUS), "bicycle", ["handbook"], 3)
    assert "Bicycle racks" in hits[0].text
