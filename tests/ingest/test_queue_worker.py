"""Queue workers in one process on the embedded default (SQLite queue, embedded Chroma, the
real parser pool and encoder), and on PostgreSQL: runs spread over two workers, incremental
reruns, a dead holder's files redone after its lease expires, the lexical marker settled
once, re-embeds and queued runs excluding each other, archive members in the run history.

Many processes on PostgreSQL and a Chroma server: ``tests/ingest/test_scale_out.py``."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from ingest.db import Database
from ingest.embed import Embedder
from ingest.index import ChromaIndex
from ingest.manifest import Manifest
from ingest.pipeline import IngestPipeline
from ingest.queue_dispatch import QueueDispatch
from ingest.queue_records import QueuedRunOpen
from ingest.queue_worker import QueueWorker
from ingest.reembed import Reembedder
from ingest.runs import RunRecord
from ingest.schedule import Scheduler, SourceRunner
from ingest.settings import IngestSettings
from ingest.sources import parse_sources
from ingest.workqueue import WorkItem, WorkQueue
from service.metrics import IngestMetrics
from tests.ingest import reader_fixtures as rf
from tests.ingest.cli_helpers import run_json
from tests.ingest.source_helpers import wait_for, write_corpus, write_doc

pytestmark = pytest.mark.slow


class Cluster:
    """Queue workers in threads of this process, each with its own pipeline."""

    def __init__(self, settings: IngestSettings, embedder: Embedder, db: Database) -> None:
        self.settings, self.embedder, self.db = settings, embedder, db
        self.queue = WorkQueue(db, lease_s=1.0)
        self.runner = SourceRunner(settings, embedder=embedder, database=db)
        self.stop = threading.Event()
        self.metrics = IngestMetrics(CollectorRegistry())
        self.workers: list[QueueWorker] = []
        self.threads: list[threading.Thread] = []

    def start(self, count: int) -> None:
        for i in range(count):
            worker = QueueWorker(
                self.queue,
                self.pipeline(),
                self.runner.runs,
                stop=self.stop,
                observer=self.metrics,
                queue_observer=self.metrics,
                poll_s=0.1,
            )
            thread = threading.Thread(target=worker.run_forever, name=f"qw{i}", daemon=True)
            thread.start()
            self.workers.append(worker)
            self.threads.append(thread)

    def pipeline(self) -> IngestPipeline:
        return IngestPipeline(self.settings, embedder=self.embedder, manifest=Manifest(self.db))

    def assert_index_matches_files(self, collection: str, docs: Path) -> None:
        """Every file indexed once: manifest rows = files, chunks = the rows' chunk counts."""
        pipeline = self.pipeline()
        index: ChromaIndex = pipeline.index
        rows = pipeline.manifest.documents(collection)
        assert sorted(r.path for r in rows) == sorted(p.name for p in docs.iterdir())
        assert {r.status for r in rows} == {"indexed"}
        per_doc: dict[str, int] = {}
        for doc_id in index.chunk_doc_ids(collection).values():
            per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
        assert per_doc == {r.id: r.chunk_count for r in rows}

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
        for worker in self.workers:
            worker.pipeline.close()

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


class _DiesBeforeRecording(WorkQueue):
    """The queue as seen by a worker that dies right after writing its file: it claims no
    further item and never records a completion."""

    def claim(self, owner: str, **options: Any) -> WorkItem | None:
        return None

    def complete(self, *args: Any, **kwargs: Any) -> bool:
        return True


@pytest.fixture()
def cluster(database: Database, embedder: Embedder) -> Iterator[Cluster]:
    """Workers on each backend: the SQLite default, then PostgreSQL."""
    made = Cluster(IngestSettings(), embedder, database)
    yield made
    made.close()


def _scheduler(cluster: Cluster, docs: Path) -> Scheduler:
    config = parse_sources(
        {
            "sources": [
                {"name": "docs", "paths": [str(docs)], "collection": "q", "schedule": "0 0 1 1 *"}
            ]
        }
    )
    return Scheduler(
        config, cluster.runner, dispatch=QueueDispatch(cluster.queue, cluster.runner.runs)
    )


def _finished(cluster: Cluster, run_id: str) -> object:
    record = cluster.runner.runs.get(run_id)
    return record if record is not None and record.outcome != "running" else None


def test_two_workers_share_a_run_and_reruns_are_incremental(
    cluster: Cluster, tmp_path: Path, data_dir: Path
) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, files=12)
    scheduler = _scheduler(cluster, docs)
    cluster.start(2)
    run_id = scheduler.trigger("docs", trigger="api")
    assert scheduler.is_running("docs")
    record = wait_for(lambda: _finished(cluster, run_id), 300, "the first run")
    assert record.outcome == "succeeded", record  # type: ignore[attr-defined]
    assert record.counts == {"indexed": 12, "unchanged": 0, "removed": 0, "failed": 0}  # type: ignore[attr-defined]
    cluster.assert_index_matches_files("q", docs)
    assert cluster.metric("inhouse_ingest_files_total", status="indexed", reason="none") == 12
    pipeline = cluster.workers[0].pipeline
    assert pipeline.index.generation("q").startswith("c:")  # settled by the finaliser

    write_doc(docs, 3, version=5)
    (docs / "doc007.md").unlink()
    write_doc(docs, 40, version=0)
    run_id = scheduler.trigger("docs", trigger="api")
    record = wait_for(lambda: _finished(cluster, run_id), 300, "the second run")
    assert record.counts == {"indexed": 2, "unchanged": 10, "removed": 1, "failed": 0}  # type: ignore[attr-defined]
    cluster.assert_index_matches_files("q", docs)
    assert not scheduler.is_running("docs")
    assert cluster.queue.depth() == 0
    status = scheduler.status().sources[0]
    assert status.running is None and status.last_runs[0].id == run_id


def test_files_held_by_a_dead_worker_are_redone_after_its_lease(
    cluster: Cluster, tmp_path: Path, data_dir: Path
) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, files=6)
    scheduler = _scheduler(cluster, docs)
    run_id = scheduler.trigger("docs", trigger="api")
    queue = cluster.queue
    discover = queue.claim("lister", kinds=("discover",))
    assert discover is not None
    lister = QueueWorker(queue, cluster.pipeline(), cluster.runner.runs)
    lister.owner = "lister"
    cluster.workers.append(lister)
    lister._discover(discover)
    ghost = [queue.claim("ghost") for _ in range(3)]  # claimed, then the holder "dies"
    assert all(item is not None for item in ghost)
    progress = queue.progress(run_id)
    assert progress is not None and (progress.done, progress.total, progress.workers) == (0, 6, 1)
    # the holder wrote its first file (chunks, manifest row) and died before recording it
    dying = QueueWorker(_DiesBeforeRecording(cluster.db), cluster.pipeline(), cluster.runner.runs)
    dying.owner = "ghost"
    cluster.workers.append(dying)
    try:
        dying._index_session(ghost[0])  # type: ignore[arg-type]
    finally:
        dying._parser_pool().close()
    assert cluster.pipeline().manifest.documents("q")[0].status == "indexed"
    cluster.start(1)
    record = wait_for(lambda: _finished(cluster, run_id), 300, "the run after the expiry")
    # the file the dead holder wrote counts as this run's: what a run without a loss reports
    assert record.counts == {"indexed": 6, "unchanged": 0, "removed": 0, "failed": 0}  # type: ignore[attr-defined]
    assert cluster.metric("inhouse_lease_expiries_total") == 3
    cluster.assert_index_matches_files("q", docs)


def test_inhouse_sources_shows_a_queued_run_s_progress_over_workers(
    cluster: Cluster, tmp_path: Path, data_dir: Path
) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, files=4)
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f"sources:\n  - {{name: docs, paths: [{docs}], collection: q, schedule: '0 0 1 1 *'}}\n"
    )
    scheduler = _scheduler(cluster, docs)
    run_id = scheduler.trigger("docs", trigger="api")
    queue = cluster.queue
    lister = QueueWorker(queue, cluster.pipeline(), cluster.runner.runs)
    discover = queue.claim(lister.owner, kinds=("discover",))
    assert discover is not None
    lister._discover(discover)
    for owner in ("host-a", "host-b"):
        item = queue.claim(owner)
        assert item is not None and queue.complete(item, owner, status="indexed", chunks=1)
        queue.claim(owner)  # each holds one more file now
    code, status = run_json(
        ["sources"], data_dir, INHOUSE_SOURCES=str(sources), INHOUSE_QUEUE__ENABLED="true"
    )
    assert code == 0
    running = status["sources"][0]["running"]
    assert running["id"] == run_id and running["outcome"] == "running"
    assert running["progress"]["files_done"] == 2
    assert running["progress"]["files_total"] == 4
    assert running["progress"]["workers"] == 2
    assert running["progress"]["eta_s"] is not None
    assert running["counts"]["indexed"] == 2


class _Paused:
    """A re-embed listener that holds the rebuild at its start until ``go_on`` is set."""

    def __init__(self) -> None:
        self.started, self.go_on = threading.Event(), threading.Event()

    def on_start(self, total: int) -> None:
        self.started.set()
        assert self.go_on.wait(120)

    def on_progress(self, done: int, total: int) -> None:
        pass

    def on_stage(self, stage: str) -> None:
        pass


def test_a_reembed_refuses_an_open_queued_run_and_workers_hold_off_during_a_reembed(
    cluster: Cluster, tmp_path: Path, data_dir: Path
) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, files=3)
    scheduler = _scheduler(cluster, docs)
    run_id = scheduler.trigger("docs", trigger="api")  # open; no worker has taken it yet
    reembedder = Reembedder(cluster.settings, embedder=cluster.embedder)
    with pytest.raises(QueuedRunOpen, match=f"held by the work queue .run {run_id[:8]}"):
        reembedder.run("q", force=True)
    code, out = run_json(["reindex", "--reembed", "q"], data_dir, INHOUSE_QUEUE__ENABLED="true")
    assert code == 1 and out["outcome"] == "skipped", out  # as when the collection is busy
    assert f"run {run_id[:8]} of source 'docs'" in out["reason"]

    cluster.start(1)
    assert wait_for(lambda: _finished(cluster, run_id), 300, "the first run")
    wait_for(lambda: not cluster.queue.open_runs(), 60, "the run to close")
    write_doc(docs, 7, version=1)
    paused = _Paused()
    reports: list[object] = []
    thread = threading.Thread(
        target=lambda: reports.append(reembedder.run("q", force=True, listener=paused))
    )
    thread.start()
    try:
        assert paused.started.wait(120)  # building, under the collection's lock
        run_id = scheduler.trigger("docs", trigger="api")
        time.sleep(2.0)  # twenty polls of the worker
        record = cluster.runner.runs.get(run_id)
        assert record is not None and record.outcome == "running"
        progress = cluster.queue.progress(run_id)
        assert progress is not None and progress.total is None  # not even listed yet
        assert cluster.queue.depth() == 1  # its discover item, still queued
    finally:
        paused.go_on.set()
        thread.join(300)
    assert [getattr(r, "outcome", r) for r in reports] == ["switched"]
    done = wait_for(lambda: _finished(cluster, run_id), 300, "the held-off run")
    assert done.counts == {"indexed": 1, "unchanged": 3, "removed": 0, "failed": 0}  # type: ignore[attr-defined]
    cluster.assert_index_matches_files("q", docs)  # in the new generation
    assert cluster.pipeline().index.aliases.resolve("q").endswith(".g1")


def _bundle(with_a: bool = True) -> bytes:
    inner = rf.zip_bytes([("b.md", b"# Nested\n\nThe zebranested figures are final.")])
    members = [("inner.zip", inner), ("../evil.txt", b"escape")]  # evil.txt: a failed member
    if with_a:
        members.insert(0, ("dir/a.txt", b"The zebrazip budget was approved in March."))
    return rf.zip_bytes(members)


def _history(record: RunRecord) -> tuple[int, dict[str, int], list[tuple[str | None, str | None]]]:
    failures = sorted((f["path"], f["reason"]) for f in record.failures)
    return record.files_done, record.counts, failures


def test_a_queued_run_counts_archive_members_as_an_in_process_run_does(
    cluster: Cluster, tmp_path: Path, data_dir: Path
) -> None:
    """The same folder (files, a zip with a nested zip and a refused member, an e-mail with
    an attachment) indexed in-process into one collection and through the queue into
    another: the same history each time: first run, unchanged rerun, archive touched (read
    and hashed, not parsed), archive changed (parsed again, a member gone)."""
    docs = tmp_path / "docs"
    write_corpus(docs, files=2)
    (docs / "bundle.zip").write_bytes(_bundle())
    attachment = ("minutes.txt", "text/plain", b"The zebraminutes record the vote.")
    (docs / "mail.eml").write_bytes(rf.eml_with_attachments("Minutes attached.", [attachment]))
    config = parse_sources(
        {
            "sources": [
                {"name": name, "paths": [str(docs)], "collection": name, "schedule": "0 0 1 1 *"}
                for name in ("local", "queued")
            ]
        }
    )
    dispatch = QueueDispatch(cluster.queue, cluster.runner.runs)
    scheduler = Scheduler(config, cluster.runner, dispatch=dispatch)
    cluster.start(1)

    def both() -> tuple[RunRecord, RunRecord]:
        local = cluster.runner.run(config.sources[0], trigger="manual")
        run_id = scheduler.trigger("queued", trigger="api")
        queued = wait_for(lambda: _finished(cluster, run_id), 300, "the queued run")
        wait_for(lambda: not cluster.queue.open_runs(), 60, "the run to close")
        return local, queued  # type: ignore[return-value]

    local, queued = both()
    assert local.counts == {"indexed": 8, "unchanged": 0, "removed": 0, "failed": 1}
    assert _history(queued) == _history(local)
    local, queued = both()  # nothing changed: members reported unchanged (or failed) too
    assert local.counts == {"indexed": 0, "unchanged": 8, "removed": 0, "failed": 1}
    assert _history(queued) == _history(local)
    later = time.time() + 5
    os.utime(docs / "bundle.zip", (later, later))  # same bytes: read and hashed, not parsed
    local, queued = both()
    assert local.counts == {"indexed": 0, "unchanged": 8, "removed": 0, "failed": 1}
    assert _history(queued) == _history(local)
    (docs / "bundle.zip").write_bytes(_bundle(with_a=False))  # parsed again: a member goes
    local, queued = both()
    assert local.counts == {"indexed": 1, "unchanged": 6, "removed": 1, "failed": 1}
    assert _history(queued) == _history(local)
