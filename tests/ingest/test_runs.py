"""Run history in the shared database (SQLite and PostgreSQL): outcomes, counts, failures,
progress/ETA, status, trimming."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import func, inspect, select, text

from ingest import run_records
from ingest import runs as runs_module
from ingest.db import Database
from ingest.db.schema import source_run_failures, source_runs
from ingest.manifest import Manifest
from ingest.report import FileResult, IngestReport
from ingest.runs import RunProgress, RunStore
from ingest.source_status import sources_status
from ingest.sources import parse_sources


@pytest.fixture()
def store(database: Database) -> Iterator[RunStore]:
    manifest = Manifest(database)
    yield RunStore(manifest)
    manifest.close()


def result(path: str, status: str, reason: str | None = None) -> FileResult:
    return FileResult(
        path=path,
        root="/docs",
        document_id=f"id-{path}",
        status=status,  # type: ignore[arg-type]
        reason=reason,
        message=f"{reason} message" if reason else None,
    )


def report(*files: FileResult) -> IngestReport:
    return IngestReport(collection="main", roots=["/docs"], started_at="t", files=list(files))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_tables_live_in_the_manifest_database(store: RunStore) -> None:
    with store.db.read() as conn:
        tables = set(inspect(conn).get_table_names())
    assert {"documents", "source_runs", "source_run_failures", "source_roots"} <= tables
    assert "source_schedule" in tables


def test_run_life_counts_and_failures(store: RunStore) -> None:
    run_id = store.start("docs", "main", trigger="schedule", full=False)
    running = store.running("docs")
    assert running is not None and running.id == run_id and running.outcome == "running"
    store.finish(
        run_id,
        "partial",
        report=report(
            result("a.md", "indexed"),
            result("b.md", "unchanged"),
            result("c.md", "removed"),
            result("d.pdf", "failed", "encrypted"),
            result("e.pdf", "failed", "timeout"),
        ),
    )
    record = store.get(run_id)
    assert record is not None
    assert record.outcome == "partial" and record.finished_at is not None
    assert record.counts == {"indexed": 1, "unchanged": 1, "removed": 1, "failed": 2}
    assert record.files_done == 5
    assert [(f["path"], f["reason"]) for f in record.failures] == [
        ("d.pdf", "encrypted"),
        ("e.pdf", "timeout"),
    ]
    assert record.failures[0]["message"] == "encrypted message"
    assert store.running("docs") is None
    assert record.to_dict()["progress"] == {
        "files_done": 5,
        "files_total": None,
        "eta_s": None,
        "workers": None,
    }


def test_history_is_trimmed_per_source(store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs_module, "KEEP_RUNS", 3)
    ids = []
    for _ in range(5):
        ids.append(store.start("docs", "main", trigger="manual", full=False))
        store.finish(ids[-1], "partial", report=report(result("x.pdf", "failed", "corrupt")))
    other = store.start("wiki", "main", trigger="manual", full=True)
    store.finish(other, "succeeded", report=report())
    kept = [r.id for r in store.recent("docs", 10)]
    assert kept == ids[:1:-1]  # the three newest, newest first
    with store.db.read() as conn:
        orphans = conn.execute(
            select(func.count()).where(
                source_run_failures.c.run_id.not_in(select(source_runs.c.id))
            )
        ).scalar()
    assert orphans == 0
    assert [r.full for r in store.recent("wiki")] == [True]


def test_abandoned_runs(store: RunStore) -> None:
    run_id = store.start("docs", "main", trigger="schedule", full=False)
    assert store.mark_abandoned("docs") == 0  # our own process is alive
    with store.manifest.transaction() as conn:
        conn.execute(
            text("UPDATE source_runs SET pid = :pid WHERE id = :id"),
            {"pid": dead_pid(), "id": run_id},
        )
    assert store.mark_abandoned() == 1
    record = store.get(run_id)
    assert record is not None and record.outcome == "abandoned" and "died" in (record.error or "")
    # whoever holds the source lock closes any leftover 'running' row, live pid or not
    live = store.start("docs", "main", trigger="schedule", full=False)
    assert store.mark_abandoned("docs", lock_held=True) == 1
    assert store.get(live).outcome == "abandoned"  # type: ignore[union-attr]


def test_progress_listener_writes_done_total_and_eta(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr(run_records.time, "monotonic", lambda: clock[0])
    run_id = store.start("docs", "main", trigger="api", full=False)
    progress = RunProgress(store, run_id, every_s=1.0)
    progress.on_start(10)
    got = store.get(run_id)
    assert got is not None and (got.files_done, got.files_total, got.eta_s) == (0, 10, None)
    clock[0] += 2.0
    progress.on_file(result("a.md", "indexed"), 1, 10)
    got = store.get(run_id)
    assert got is not None and got.files_done == 1 and got.eta_s == pytest.approx(18.0)
    clock[0] += 0.1  # throttled: not written yet
    progress.on_file(result("b.md", "unchanged"), 2, 10)
    assert store.get(run_id).files_done == 1  # type: ignore[union-attr]
    clock[0] += 1.9  # 4 s for 3 files -> 7 left at 0.75 files/s
    progress.on_file(result("c.md", "failed", "empty"), 3, 10)
    got = store.get(run_id)
    assert got is not None and got.files_done == 3 and got.eta_s == pytest.approx(28 / 3)
    assert got.counts == {"indexed": 1, "unchanged": 1, "removed": 0, "failed": 1}
    assert store.running("docs").files_total == 10  # type: ignore[union-attr]


SOURCES = {
    "sources": [
        {"name": "docs", "paths": ["/docs"], "schedule": "0 * * * *"},
        {"name": "off", "paths": ["/off"], "schedule": "0 * * * *", "enabled": False},
    ]
}


def test_status_next_run_running_and_removed(store: RunStore) -> None:
    config = parse_sources(SOURCES)
    now = datetime(2026, 3, 1, 10, 17, 5).astimezone()
    old = store.start("gone", "main", trigger="schedule", full=False)
    store.finish(old, "succeeded", report=report(result("a.md", "indexed")))
    store.record_roots("gone", "main", ["/gone"])
    store.record_roots("docs", "main", ["/docs"])
    status = sources_status(config, store, now=now).to_dict()
    docs, off = status["sources"]
    assert docs["next_run_at"] == now.replace(hour=11, minute=0, second=0).isoformat()
    assert docs["scheduler"] is None and docs["running"] is None and docs["last_runs"] == []
    assert off["next_run_at"] is None and off["enabled"] is False
    assert status["removed"] == [
        {"name": "gone", "roots": [{"collection": "main", "root": "/gone"}]}
    ]

    store.set_next_run("docs", "2026-03-01T12:00:00+00:00")  # a live scheduler (this process)
    run_id = store.start("docs", "main", trigger="schedule", full=False)
    store.progress(run_id, done=4, total=8, eta_s=12.0, counts=report().counts())
    status = sources_status(config, store, now=now).to_dict()
    docs = status["sources"][0]
    assert docs["next_run_at"] == "2026-03-01T12:00:00+00:00"
    assert docs["scheduler"]["pid"] > 0
    assert docs["running"]["progress"] == {
        "files_done": 4,
        "files_total": 8,
        "eta_s": 12.0,
        "workers": None,
    }
    assert [r["outcome"] for r in docs["last_runs"]] == ["running"]

    with store.manifest.transaction() as conn:  # the scheduler process died
        conn.execute(text("UPDATE source_schedule SET pid = :pid"), {"pid": dead_pid()})
    docs = sources_status(config, store, now=now).to_dict()["sources"][0]
    assert docs["scheduler"] is None
    assert docs["next_run_at"] == now.replace(hour=11, minute=0, second=0).isoformat()

    store.forget_source("gone")
    assert sources_status(config, store, now=now).to_dict()["removed"] == []
