"""Queue workers in one process on the embedded default (SQLite queue, embedded Chroma, the
real parser pool and encoder): runs spread over two workers, incremental reruns, a dead
holder's files redone after its lease expires, the lexical marker settled once.

Many processes on PostgreSQL and a Chroma server: ``tests/ingest/test_scale_out.py``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from ingest.db import Database
from ingest.embed import Embedder
from ingest.index import ChromaIndex
from ingest.manifest import Manifest
from ingest.pipeline import IngestPipeline
from ingest.queue_dispatch import QueueDispatch
from ingest.queue_worker import QueueWorker
from ingest.schedule import Scheduler, SourceRunner
from ingest.settings import IngestSettings
from ingest.sources import parse_sources
from ingest.workqueue import WorkQueue
from service.metrics import IngestMetrics
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
    cluster.start(1)
    record = wait_for(lambda: _finished(cluster, run_id), 300, "the run after the expiry")
    assert record.counts["indexed"] == 6  # type: ignore[attr-defined]
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
