"""The scheduler and source runner: cron firing (injected clock), locks, stop, errors, prune,
one firing per slot across schedulers; on SQLite and PostgreSQL.

A stand-in pipeline keeps these fast; tests/ingest/test_reindex_e2e.py drives the real one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ingest.report import FileResult, IngestReport
from ingest.schedule import Scheduler, SourceBusy, SourceRunner, UnknownSource
from ingest.settings import IngestSettings
from ingest.sources import SourcesConfig, parse_sources

T0 = datetime(2026, 3, 2, 9, 0, 30).astimezone()


class StubPipeline:
    """Stands in for IngestPipeline: three files per run, optionally held mid-run."""

    def __init__(self, owner: Stub) -> None:
        self.owner = owner

    def run(
        self,
        paths: Sequence[Path],
        collection: str,
        *,
        full: bool,
        include: Sequence[str],
        exclude: Sequence[str],
        stop: threading.Event,
        listener: Any,
    ) -> IngestReport:
        self.owner.calls.append({"paths": list(paths), "collection": collection, "full": full})
        self.owner.active += 1
        self.owner.max_active = max(self.owner.max_active, self.owner.active)
        report = IngestReport(collection=collection, roots=[str(p) for p in paths], started_at="")
        try:
            listener.on_start(3)
            for i in range(3):
                self.owner.started.set()
                while not (self.owner.release.wait(0.01) or stop.is_set()):
                    pass
                status = "failed" if self.owner.fail_one and i == 1 else "indexed"
                result = FileResult(
                    path=f"f{i}.md",
                    root=str(paths[0]),
                    document_id=f"d{i}",
                    status=status,  # type: ignore[arg-type]
                    reason="corrupt" if status == "failed" else None,
                    message="bad bytes" if status == "failed" else None,
                )
                report.files.append(result)
                listener.on_file(result, i + 1, 3)
                if stop.is_set():
                    report.interrupted = True
                    break
        finally:
            self.owner.active -= 1
        return report

    def remove_collection_documents(self, collection: str, root: str | None = None) -> int:
        self.owner.removed.append((collection, root))
        return 2

    def close(self) -> None:
        pass


class Stub:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.removed: list[tuple[str, str | None]] = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()
        self.active = 0
        self.max_active = 0
        self.fail_one = False

    def factory(self) -> Any:
        return StubPipeline(self)


@pytest.fixture()
def stub() -> Stub:
    return Stub()


@pytest.fixture()
def roots(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("docs", "wiki", "off"):
        out[name] = tmp_path / name
        out[name].mkdir()
        (out[name] / "a.md").write_text("# A\n\ntext\n")
    return out


def config_for(roots: dict[str, Path], schedule: str = "*/10 * * * *") -> SourcesConfig:
    return parse_sources(
        {
            "sources": [
                {"name": "docs", "paths": [str(roots["docs"])], "schedule": schedule},
                {
                    "name": "wiki",
                    "paths": [str(roots["wiki"])],
                    "collection": "wiki",
                    "schedule": "0 12 * * *",
                },
                {
                    "name": "off",
                    "paths": [str(roots["off"])],
                    "schedule": "* * * * * *",
                    "enabled": False,
                },
            ]
        }
    )


@pytest.fixture()
def runner(data_dir: Path, stub: Stub, db_url: str | None) -> Iterator[SourceRunner]:
    run = SourceRunner(IngestSettings(), pipeline_factory=stub.factory)
    yield run
    run.stop_event.set()
    run.runs.manifest.close()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def settle(scheduler: Scheduler) -> None:
    scheduler.join(timeout=10)


def test_cron_fires_on_time_with_an_injected_clock(runner: SourceRunner, stub: Stub, roots) -> None:
    clock = Clock(T0)
    scheduler = Scheduler(config_for(roots), runner, clock=clock)
    assert scheduler.tick() == []  # plans only: cron never fires at start
    assert scheduler.next_runs() == {
        "docs": T0.replace(minute=10, second=0),
        "wiki": T0.replace(hour=12, minute=0, second=0),
    }  # the disabled source is never planned
    clock.now = T0.replace(minute=9, second=59)
    assert scheduler.tick() == []
    clock.now = T0.replace(minute=10, second=0)
    assert scheduler.tick() == ["docs"]
    settle(scheduler)
    assert scheduler.next_runs()["docs"] == T0.replace(minute=20, second=0)
    # three hours of missed slots coalesce into one run, then the plan moves on from now
    clock.now = T0 + timedelta(hours=3, minutes=1)
    assert scheduler.tick() == ["docs", "wiki"]
    settle(scheduler)
    assert scheduler.next_runs()["docs"] == (T0 + timedelta(hours=3)).replace(minute=10, second=0)
    collections = [c["collection"] for c in stub.calls]
    assert collections[0] == "main"
    assert sorted(collections[1:]) == ["main", "wiki"]  # fired together: either may start first
    history = runner.runs.recent("docs")
    assert [(r.trigger, r.outcome) for r in history] == [("schedule", "succeeded")] * 2
    assert history[0].counts["indexed"] == 3 and history[0].files_total == 3
    assert runner.runs.scheduled("docs") == {
        "next_run_at": scheduler.next_runs()["docs"].isoformat(),
        "host": history[0].host,
        "pid": history[0].pid,
    }


def test_live_holder_is_skipped_with_a_logged_reason(
    runner: SourceRunner, stub: Stub, roots, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(T0)
    scheduler = Scheduler(config_for(roots), runner, clock=clock)
    scheduler.tick()
    holder = runner.source_lock("docs").acquire()  # as another process would
    try:
        clock.now = T0.replace(minute=10)
        with caplog.at_level(logging.INFO, logger="ingest.schedule"):
            assert scheduler.tick() == []
        assert "docs: scheduled run skipped" in caplog.text
        assert "is being re-indexed (pid=" in caplog.text
        assert runner.runs.recent("docs") == []
        with pytest.raises(SourceBusy):
            scheduler.trigger("docs")
        started = time.monotonic()
        with pytest.raises(SourceBusy):
            runner.claim(config_for(roots).sources[0], trigger="manual", wait=0.4)
        assert time.monotonic() - started >= 0.4
    finally:
        holder.release()
    assert stub.calls == []
    # an on-demand run waits for the holder instead
    holder.acquire()
    threading.Timer(0.5, holder.release).start()
    record = runner.run(config_for(roots).sources[0], trigger="manual", wait=None)
    assert record.outcome == "succeeded" and record.trigger == "manual"


def test_one_run_per_source_in_process(runner: SourceRunner, stub: Stub, roots) -> None:
    scheduler = Scheduler(config_for(roots), runner, clock=Clock(T0))
    stub.release.clear()
    run_id = scheduler.trigger("docs", full=True)
    assert stub.started.wait(5)
    assert scheduler.is_running("docs")
    with pytest.raises(SourceBusy):
        scheduler.trigger("docs")
    running = runner.runs.running("docs")
    assert running is not None and running.id == run_id and running.full
    assert running.files_total == 3 and running.files_done == 0
    wiki = scheduler.trigger("wiki")  # another source may run alongside
    deadline = time.monotonic() + 60  # a hang guard only: wiki's thread starts in ms
    while stub.active < 2 and time.monotonic() < deadline:  # both held: they overlap
        time.sleep(0.01)
    stub.release.set()
    settle(scheduler)
    assert stub.max_active == 2
    assert runner.runs.get(run_id).outcome == "succeeded"  # type: ignore[union-attr]
    assert runner.runs.get(wiki).collection == "wiki"  # type: ignore[union-attr]
    with pytest.raises(UnknownSource):
        scheduler.trigger("nope")
    scheduler.trigger("off")  # disabled: no schedule, but runs on demand
    settle(scheduler)
    assert [r.outcome for r in runner.runs.recent("off")] == ["succeeded"]


def test_stop_finishes_the_current_file_and_records_progress(
    runner: SourceRunner, stub: Stub, roots
) -> None:
    scheduler = Scheduler(config_for(roots, "* * * * * *"), runner)  # real clock
    stub.release.clear()
    scheduler.start()
    assert stub.started.wait(5)  # fired within about a second
    scheduler.shutdown(timeout=10)
    (record,) = runner.runs.recent("docs")
    assert record.outcome == "interrupted"
    assert record.files_done == 1 and record.counts["indexed"] == 1
    assert record.finished_at is not None
    assert not scheduler.is_running("docs")
    runner.source_lock("docs").acquire(timeout=0).release()  # released


def test_run_errors_and_partial_runs_are_recorded(runner: SourceRunner, stub: Stub, roots) -> None:
    docs = config_for(roots).sources[0]
    stub.fail_one = True
    record = runner.run(docs)
    assert record.outcome == "partial"
    assert record.failures == [
        {"path": "f1.md", "root": str(roots["docs"]), "reason": "corrupt", "message": "bad bytes"}
    ]
    roots["docs"].rename(roots["docs"].with_name("moved"))
    record = runner.run(docs)
    assert record.outcome == "error" and "no such file or folder" in (record.error or "")
    assert len(stub.calls) == 1  # the pipeline never ran against the missing root


def test_empty_root_with_indexed_documents_is_refused(
    runner: SourceRunner, stub: Stub, roots
) -> None:
    docs = config_for(roots).sources[0]
    (roots["docs"] / "a.md").unlink()
    assert runner.run(docs).outcome == "succeeded"  # nothing indexed from it yet: fine
    with runner.runs.manifest.transaction() as conn:
        conn.execute(
            text(
                """INSERT INTO documents (id, collection, root, path, status, created_at,
                   updated_at) VALUES ('x', 'main', :root, 'a.md', 'indexed', 'now', 'now')"""
            ),
            {"root": str(roots["docs"])},
        )
    record = runner.run(docs)
    assert record.outcome == "error"
    assert "is empty but 1 documents were indexed" in (record.error or "")
    assert len(stub.calls) == 1


def test_prune_removes_only_sources_gone_from_the_config(
    runner: SourceRunner, stub: Stub, roots, tmp_path: Path
) -> None:
    config = config_for(roots)
    for source in config.sources[:2]:
        runner.run(source)
    runner.runs.record_roots("old", "main", [str(tmp_path / "old-root"), str(roots["docs"])])
    runner.runs.record_roots("docs", "moved", [str(roots["docs"])])  # collection changed since
    old_run = runner.runs.start("old", "main", trigger="schedule", full=False)
    runner.runs.finish(old_run, "succeeded")
    status = Scheduler(config, runner).status()
    assert [gone.name for gone in status.removed] == ["old"]

    pruned = runner.prune(config)
    assert stub.removed == [("moved", str(roots["docs"])), ("main", str(tmp_path / "old-root"))]
    assert {(p["source"], p["root"], p["documents_removed"]) for p in pruned} == {
        ("docs", str(roots["docs"]), 2),
        ("old", str(tmp_path / "old-root"), 2),
        ("old", str(roots["docs"]), 0),  # still covered by 'docs': its documents stay
    }
    assert runner.runs.recent("old") == [] and runner.runs.recent("docs") != []
    assert Scheduler(config, runner).status().removed == []
    assert runner.prune(config) == []
