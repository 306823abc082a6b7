"""``inhouse worker --metrics-port``: the real console script re-indexes a generated folder
on an every-second schedule; its own port serves the ingest series (Prometheus text
parser) and, with ``INHOUSE_LOG_FORMAT=json``, every stderr line is a JSON object."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ingest.cli_helpers import INHOUSE, inhouse_env, run_inhouse
from tests.ingest.source_helpers import wait_for, write_corpus, write_sources

FILES = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """name and sorted labels -> value; {} while the port is not up yet."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def indexed(port: int) -> float:
    key = ("inhouse_ingest_files_total", (("reason", "none"), ("status", "indexed")))
    return scrape(port).get(key, 0.0)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_worker_serves_its_ingest_series_and_logs_json(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, files=FILES)
    sources = write_sources(
        tmp_path / "sources.yaml",
        {"name": "docs", "path": str(docs), "collection": "wm", "schedule": "* * * * * *"},
    )
    port = free_port()
    log = tmp_path / "worker.log"
    env = inhouse_env(tmp_path / "data", INHOUSE_SOURCES=str(sources), INHOUSE_LOG_FORMAT="json")
    with log.open("wb") as err:
        process = subprocess.Popen(
            [INHOUSE, "worker", "--metrics-port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        try:
            wait_for(lambda: indexed(port) >= FILES, 300, "the first run's files in /metrics")
            # later every-second runs find the files unchanged and count them so
            unchanged = (
                "inhouse_ingest_files_total",
                (("reason", "none"), ("status", "unchanged")),
            )
            wait_for(lambda: scrape(port).get(unchanged, 0) >= FILES, 120, "an unchanged run")
            series = scrape(port)
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=120)
    lines = log.read_text().splitlines()
    assert code == 0, lines[-20:]
    assert indexed_count(series) == FILES  # each file indexed once, however many runs
    assert series[("inhouse_ingest_chunks_written_total", ())] >= FILES
    assert series[("inhouse_lexical_refreshes_total", (("kind", "full"),))] >= 1
    assert not any(name.startswith("inhouse_http_") for name, _ in series)  # ingest only
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any("metrics on http://127.0.0.1:" in str(r["message"]) for r in records)
    assert {"ts", "level", "logger", "message"} <= set(records[0])


def indexed_count(series: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    return series[("inhouse_ingest_files_total", (("reason", "none"), ("status", "indexed")))]


def test_worker_refuses_a_bad_metrics_port(tmp_path: Path) -> None:
    done = run_inhouse(["worker", "--metrics-port", "70000"], tmp_path / "data", timeout=60)
    assert done.returncode == 2 and "--metrics-port" in done.stderr
