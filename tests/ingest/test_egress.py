"""Zero egress: `inhouse ingest`, `inhouse serve` (a query, an upload) and `inhouse worker` (a
scheduled run) make no non-loopback connection, UDP send or name lookup.

The test process has the zero-egress variables set (tests/conftest.py imports ``ingest``), so
each child gets an environment with them removed: only ingest/offline.py can put them back.
tests/ingest/egress_watch.py, loaded as ``sitecustomize`` in every Python process of the run,
records each process (started or forked), the environment each library that can phone home
was imported under, and every outside connection, UDP send and lookup.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.offline import OFFLINE_ENV
from tests.ingest import egress_watch
from tests.ingest.cli_helpers import INHOUSE
from tests.ingest.source_helpers import runs_of, wait_for, write_sources
from tests.service.ollama_server import OllamaTestServer, Reply, Script, start_server

pytestmark = pytest.mark.slow

STATES = ("start", "fork", "import")  # the events that record the environment
ANSWER = "The cafeteria serves lunch from noon [1]."


def make_docs(root: Path) -> None:
    from docx import Document
    from fpdf import FPDF

    root.mkdir(parents=True)
    pdf = FPDF()
    for page in range(2):
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 8, f"Quarterly report page {page + 1}. Revenue grew in every region.")
    pdf.output(str(root / "report.pdf"))
    doc = Document()
    doc.add_heading("Travel policy", level=1)
    doc.add_paragraph("Book trains for trips under four hours.")
    doc.save(str(root / "travel.docx"))
    (root / "notes.md").write_text("# Notes\n\nThe cafeteria serves lunch from noon.\n")
    (root / "page.html").write_text("<html><body><h1>Intranet</h1><p>Welcome.</p></body></html>")


class Watch:
    """A sitecustomize folder, its log, and child environments without the offline switches."""

    def __init__(self, tmp_path: Path) -> None:
        guard = tmp_path / "guard"
        guard.mkdir()
        shutil.copy(egress_watch.__file__, guard / "sitecustomize.py")
        self.log = tmp_path / "egress.log"
        self.log.write_text("")
        self.pythonpath = os.pathsep.join(
            p for p in (str(guard), os.environ.get("PYTHONPATH", "")) if p
        )

    def env(self, data: Path, **extra: str) -> dict[str, str]:
        strip = set(OFFLINE_ENV) | set(egress_watch.EXPECTED)
        env = {k: v for k, v in os.environ.items() if k not in strip}
        env.update(
            INHOUSE_DATA_DIR=str(data),
            PYTHONPATH=self.pythonpath,
            EGRESS_LOG=str(self.log),
            **extra,
        )
        return env

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def assert_clean(self, main_pid: int) -> None:
        """No egress; every process ran with the offline switches; parser workers were seen."""
        records = self.records()
        attempts = [r for r in records if r["event"] in ("connect", "send", "dns")]
        assert attempts == [], f"outside connections attempted: {attempts}"
        late = [r for r in records if r["event"] == "import" and r["missing"]]
        assert late == [], f"imported before the zero-egress variables were set: {late}"
        pids = {r["pid"] for r in records if r["event"] in ("start", "fork")}
        guarded = {r["pid"] for r in records if r["event"] in STATES and not r["missing"]}
        unguarded = pids - guarded
        assert unguarded == set(), [r for r in records if r["pid"] in unguarded]
        assert main_pid in pids
        assert any(r["pid"] == main_pid and r["event"] == "import" for r in records)
        # parser workers: forked by a helper process (the forkserver) that the CLI started
        helpers = {r["pid"] for r in records if r["event"] == "start" and r["ppid"] == main_pid}
        workers = {r["pid"] for r in records if r["event"] == "fork" and r["ppid"] in helpers}
        assert workers, f"no parser worker process was seen: {records}"


def test_full_ingest_makes_no_outside_connection(tmp_path: Path) -> None:
    watch = Watch(tmp_path)
    docs = tmp_path / "docs"
    make_docs(docs)
    done = subprocess.run(
        [INHOUSE, "ingest", str(docs), "--json"],
        env=watch.env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["counts"]["indexed"] == 4
    main_pid = next(r["pid"] for r in watch.records() if r["event"] == "start")
    watch.assert_clean(main_pid)


@pytest.fixture
def ollama() -> Iterator[OllamaTestServer]:
    server = start_server(Script())
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(900)
def test_serve_query_and_upload_make_no_outside_connection(
    tmp_path: Path, ollama: OllamaTestServer
) -> None:
    watch = Watch(tmp_path)
    docs = tmp_path / "docs"
    make_docs(docs)
    port = free_port()
    env = watch.env(
        tmp_path / "data",
        OLLAMA_HOST=ollama.url,
        INHOUSE_AUTH="disabled",
        INHOUSE_DEMO_MODEL__USE="never",
        INHOUSE_REASONING_LOG__DIR=str(tmp_path / "reasoning"),
    )
    proc = subprocess.Popen(
        [INHOUSE, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: ready(url) or proc.poll() is not None, 300, "the service to start")
        assert proc.poll() is None, "serve exited"
        files = [
            ("files", (p.name, p.read_bytes(), "application/octet-stream"))
            for p in (docs / "report.pdf", docs / "notes.md")
        ]
        uploaded = httpx.post(f"{url}/v1/collections/main/documents", files=files, timeout=600)
        assert uploaded.status_code == 200, uploaded.text
        assert [f["status"] for f in uploaded.json()["files"]] == ["indexed", "indexed"]
        ollama.script.push(Reply.answer(ANSWER, "lunch"))
        answer = httpx.post(
            f"{url}/v1/query", json={"question": "When is lunch served?"}, timeout=300
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["answer"] == ANSWER
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output[-3000:]
    watch.assert_clean(proc.pid)


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.timeout(900)
def test_worker_scheduled_run_makes_no_outside_connection(tmp_path: Path) -> None:
    watch = Watch(tmp_path)
    docs = tmp_path / "docs"
    make_docs(docs)
    data = tmp_path / "data"
    sources = write_sources(
        tmp_path / "sources.yaml",
        {"name": "docs", "path": str(docs), "collection": "main", "schedule": "* * * * * *"},
    )
    proc = subprocess.Popen(
        [INHOUSE, "worker"],
        env=watch.env(data, INHOUSE_SOURCES=str(sources)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: (
                proc.poll() is not None
                or any(r["outcome"] == "succeeded" for r in runs_of(data, "docs"))
            ),
            600,
            "one scheduled run",
        )
        assert proc.poll() is None, "the worker exited"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    (run, *_) = runs_of(data, "docs")
    assert run["trigger"] == "schedule" and run["indexed"] == 4
    watch.assert_clean(proc.pid)


def test_watch_records_every_kind_of_egress(tmp_path: Path) -> None:
    """The watcher itself works, in a fresh interpreter and in a forked child."""
    watch = Watch(tmp_path)
    code = """
import os, socket
def attempt(call):
    try:
        call()
    except OSError:
        pass
attempt(lambda: socket.getaddrinfo("example.com", 443))
attempt(lambda: socket.gethostbyname("example.org"))
attempt(lambda: socket.gethostbyname_ex("example.net"))
attempt(lambda: socket.create_connection(("192.0.2.1", 443), timeout=1))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
attempt(lambda: udp.sendto(b"x", ("192.0.2.2", 53)))
attempt(lambda: udp.connect(("192.0.2.3", 53)))
pid = os.fork()
if pid == 0:
    attempt(lambda: socket.gethostbyname("example.edu"))
    os._exit(0)
os.waitpid(pid, 0)
import chromadb
"""
    subprocess.run(
        [sys.executable, "-c", code], env=watch.env(tmp_path / "data"), check=True, timeout=120
    )
    records = watch.records()
    targets = {str(r["target"]) for r in records if r["event"] in ("dns", "connect", "send")}
    for host in ("example.com", "example.org", "example.net", "192.0.2.1", "192.0.2.2",
                 "192.0.2.3", "example.edu"):  # fmt: skip
        assert any(host in t for t in targets), (host, records)
    assert {r["event"] for r in records} >= {"start", "fork", "import", "dns", "connect", "send"}
    imports = [r for r in records if r["event"] == "import"]
    assert imports[0]["module"] == "chromadb"
    assert all(r["missing"] for r in imports)  # ingest was never imported
    with pytest.raises(AssertionError, match="outside connections"):
        watch.assert_clean(records[0]["pid"])
