"""The re-index worker end to end, on the real default pipeline (parser processes, encoder, Chroma).

Schedules firing every second pick up edits, additions and deletions; queries during a
run always find the document being updated; two worker processes never run one source
at once; SIGTERM and kill -9 mid-run converge on the next run.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.discover import scan_root
from ingest.embed import Embedder
from ingest.index import META_DOC_HASH, ChromaIndex, document_id, make_chroma_client
from ingest.jobs import file_hash
from ingest.manifest import utc_now
from ingest.pipeline import IngestPipeline
from ingest.schedule import Scheduler, SourceRunner
from ingest.settings import IngestSettings
from ingest.sources import Source, parse_sources
from tests.ingest.cli_helpers import INHOUSE, index_snapshot, inhouse_env, run_json
from tests.ingest.source_helpers import (
    assert_index_matches_files,
    runs_of,
    wait_for,
    write_corpus,
    write_doc,
    write_sources,
)

pytestmark = pytest.mark.slow


def source(name: str, docs: Path, collection: str, schedule: str = "0 * * * *") -> Source:
    data = {"name": name, "paths": [str(docs)], "collection": collection, "schedule": schedule}
    return parse_sources({"sources": [data]}).sources[0]


@pytest.fixture()
def runner(data_dir: Path, embedder: Embedder) -> Iterator[SourceRunner]:
    settings = IngestSettings()
    run = SourceRunner(
        settings, pipeline_factory=lambda: IngestPipeline(settings, embedder=embedder)
    )
    yield run
    run.stop_event.set()
    run.runs.manifest.close()


def finished(data_dir: Path, name: str, since: str = "") -> list[dict[str, Any]]:
    return [
        r
        for r in runs_of(data_dir, name)
        if r["outcome"] != "running" and str(r["started_at"]) > since
    ]


def test_every_second_schedule_picks_up_edits_additions_deletions(
    runner: SourceRunner, embedder: Embedder, data_dir: Path, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, files=4)
    config = parse_sources(
        {
            "sources": [
                {
                    "name": "docs",
                    "paths": [str(docs)],
                    "collection": "sched",
                    "schedule": "* * * * * *",
                }
            ]
        }  # fmt: skip
    )
    scheduler = Scheduler(config, runner)
    scheduler.start()
    try:
        wait_for(lambda: finished(data_dir, "docs"), 240, "the first scheduled run")
        write_doc(docs, 0, version=1)  # edit
        write_doc(docs, 10, version=0)  # add
        (docs / "doc003.md").unlink()  # delete
        mark = utc_now()
        wait_for(lambda: finished(data_dir, "docs", since=mark), 240, "a run after the edits")
    finally:
        scheduler.shutdown(timeout=120)
    runs = runs_of(data_dir, "docs")
    assert {r["trigger"] for r in runs} == {"schedule"}
    assert all(r["outcome"] in ("succeeded", "interrupted") for r in runs), runs
    assert runs[0]["indexed"] == 4
    assert sum(r["indexed"] for r in runs[1:]) >= 2 and sum(r["removed"] for r in runs) == 1
    assert_index_matches_files(data_dir, "sched", docs)
    index = ChromaIndex(make_chroma_client(IngestSettings()), embedder.info)
    doc0 = document_id("sched", str(scan_root(docs)), "doc000.md")
    hashes = {c[META_DOC_HASH] for c in index.document_chunks("sched", doc0)}
    assert hashes == {file_hash(docs / "doc000.md")}  # the edited version, only


def test_queries_during_a_run_always_find_the_document_being_updated(
    runner: SourceRunner, embedder: Embedder, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, files=12)
    src = source("docs", docs, "live")
    assert runner.run(src).outcome == "succeeded"
    root = str(scan_root(docs))
    watched = {document_id("live", root, f"doc{i:03d}.md"): i for i in range(12)}
    old = {d: file_hash(docs / f"doc{i:03d}.md") for d, i in watched.items()}
    write_corpus(docs, files=12, version=1)  # every watched document changes
    new = {d: file_hash(docs / f"doc{i:03d}.md") for d, i in watched.items()}
    index = ChromaIndex(make_chroma_client(IngestSettings()), embedder.info)
    vector = embedder.encode(["supplier contract audit budget"])[0]

    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.setdefault("run", runner.run(src)))
    seen: dict[str, set[str]] = {d: set() for d in watched}
    empty: list[str] = []
    queries = 0
    thread.start()
    while thread.is_alive():
        for doc_id in watched:
            hits = index.query("live", vector, k=3, where={"document_id": doc_id})
            queries += 1
            if not hits:
                empty.append(doc_id)
            seen[doc_id] |= {str(h.metadata[META_DOC_HASH]) for h in hits}
    thread.join()
    assert result["run"].outcome == "succeeded" and result["run"].counts["indexed"] == 12
    assert empty == [], f"{len(empty)} of {queries} queries found no chunk of the document"
    both = [d for d in watched if seen[d] >= {old[d], new[d]}]
    assert len(both) >= 3, "the query loop did not overlap the updates"
    assert all(seen[d] <= {old[d], new[d]} for d in watched)


def start_worker(data_dir: Path, sources: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [INHOUSE, "worker"],
        env=inhouse_env(data_dir, INHOUSE_SOURCES=str(sources)),
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        start_new_session=True,
    )


@pytest.mark.timeout(900)
def test_two_worker_processes_never_run_one_source_concurrently(tmp_path: Path) -> None:
    data = tmp_path / "data"
    a, b = tmp_path / "a", tmp_path / "b"
    write_corpus(a, files=8)
    write_corpus(b, files=3)
    sources = write_sources(
        tmp_path / "sources.yaml",
        {"name": "a", "path": str(a), "collection": "ca", "schedule": "* * * * * *"},
        {"name": "b", "path": str(b), "collection": "cb", "schedule": "* * * * * *"},
    )
    logs = [tmp_path / "worker1.log", tmp_path / "worker2.log"]
    workers = [start_worker(data, sources, log) for log in logs]
    try:
        wait_for(
            lambda: all(
                len([r for r in finished(data, n) if r["outcome"] == "succeeded"]) >= 2
                for n in ("a", "b")
            ),
            600,
            "two runs of each source",
        )
        write_doc(a, 3, version=2)  # work for a later run while both keep firing
        mark = utc_now()
        wait_for(lambda: finished(data, "a", since=mark), 120, "a run after the edit")
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=120) for proc in workers]
    text = [log.read_text() for log in logs]
    assert codes == [0, 0], text
    assert any("scheduled run skipped" in t and "is being re-indexed" in t for t in text), text
    for name in ("a", "b"):
        runs = runs_of(data, name)
        assert all(r["outcome"] in ("succeeded", "interrupted") for r in runs), [
            (r["outcome"], r.get("error"), r.get("counts")) for r in runs
        ]
        for before, after in zip(runs, runs[1:]):
            assert before["finished_at"] is not None
            assert str(before["finished_at"]) <= str(after["started_at"]), (before, after)
    assert {r["pid"] for n in ("a", "b") for r in runs_of(data, n)} <= {p.pid for p in workers}
    assert_index_matches_files(data, "ca", a)
    assert_index_matches_files(data, "cb", b)


def reindex(data: Path, sources: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [INHOUSE, "reindex", "docs", "--json"],
        env=inhouse_env(data, INHOUSE_SOURCES=str(sources)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def progress(data: Path) -> int:
    rows = [r for r in runs_of(data, "docs") if r["outcome"] == "running"]
    return int(rows[-1]["files_done"]) if rows else 0


FILES_LONG = 40


@pytest.mark.timeout(900)
def test_sigterm_then_kill9_mid_run_converge(
    runner: SourceRunner, data_dir: Path, tmp_path: Path
) -> None:
    data, docs = data_dir, tmp_path / "docs"
    # ~9 chunks a file: small files are encoded in batches (ingest.batching), so files of a
    # few chunks would all land in one batch and the run would show no progress mid-way
    docs.mkdir()
    for i in range(FILES_LONG):
        write_doc(docs, i, 0, paragraphs=24)
    sources = write_sources(tmp_path / "sources.yaml", {"name": "docs", "path": str(docs)})

    proc = reindex(data, sources)
    wait_for(lambda: progress(data) >= 4, 400, "files indexed before SIGTERM")
    os.kill(proc.pid, signal.SIGTERM)  # like `docker stop`: the main process only
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    (stopped,) = json.loads(out)["runs"]
    assert stopped["outcome"] == "interrupted"
    assert 4 <= stopped["progress"]["files_done"] < FILES_LONG
    conn = sqlite3.connect(data / "inhouse.sqlite3")
    states = dict(conn.execute("SELECT status, COUNT(*) FROM documents GROUP BY status"))
    conn.close()
    assert states == {"indexed": stopped["counts"]["indexed"]}  # the current file was finished

    proc = reindex(data, sources)
    done_before = stopped["counts"]["indexed"]
    wait_for(lambda: progress(data) >= done_before + 3, 400, "progress before kill -9")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    final = runner.run(source("docs", docs, "main"))  # the next run, in this process
    assert final.outcome == "succeeded", final
    assert final.counts["unchanged"] >= done_before + 2
    assert final.counts["indexed"] + final.counts["unchanged"] == FILES_LONG
    assert_index_matches_files(data, "main", docs)
    code, status = run_json(["sources"], data, INHOUSE_SOURCES=str(sources))
    assert code == 0
    outcomes = [r["outcome"] for r in status["sources"][0]["last_runs"]]
    assert outcomes == ["succeeded", "abandoned", "interrupted"]


def test_removed_source_keeps_chunks_until_prune(
    runner: SourceRunner, data_dir: Path, tmp_path: Path
) -> None:
    keep, gone = tmp_path / "keep", tmp_path / "gone"
    write_corpus(keep, files=2)
    write_corpus(gone, files=2)
    for name, docs in (("keep", keep), ("gone", gone)):
        assert runner.run(source(name, docs, "shared")).outcome == "succeeded"
    chunks, manifest = index_snapshot(data_dir, "shared")
    assert len(manifest) == 4
    sources = write_sources(tmp_path / "sources.yaml", {"name": "keep", "path": str(keep),
                                                        "collection": "shared"})  # fmt: skip
    code, status = run_json(["sources"], data_dir, INHOUSE_SOURCES=str(sources))
    assert code == 0 and [s["name"] for s in status["sources"]] == ["keep"]
    assert status["removed"] == [
        {"name": "gone", "roots": [{"collection": "shared", "root": str(scan_root(gone))}]}
    ]
    assert index_snapshot(data_dir, "shared") == (chunks, manifest)  # nothing removed yet

    pruned = runner.prune(parse_sources({"sources": [source("keep", keep, "shared").model_dump()]}))
    assert [(p["source"], p["documents_removed"]) for p in pruned] == [("gone", 2)]
    assert_index_matches_files(data_dir, "shared", keep)
    code, report = run_json(["reindex", "--prune"], data_dir, INHOUSE_SOURCES=str(sources))
    assert code == 0 and report == {"pruned": [], "runs": [], "skipped": []}
