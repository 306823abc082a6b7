"""Each scheduled slot fires once, whichever processes run a scheduler (SQLite and
PostgreSQL): three scheduler processes tick through the same slots at the same instants."""

from __future__ import annotations

import logging
import multiprocessing as mp
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest.manifest import Manifest
from ingest.report import IngestReport
from ingest.runs import RunStore
from ingest.schedule import Scheduler, SourceRunner
from ingest.settings import IngestSettings
from ingest.sources import parse_sources

T0 = datetime(2026, 3, 2, 9, 0, 30).astimezone()
SLOTS = 6


class EmptyPipeline:
    def run(self, paths: Any, collection: str, **_: Any) -> IngestReport:
        return IngestReport(collection=collection, roots=[], started_at="")

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def scheduler_process(docs: str, barrier: Any, fired: Any) -> None:
    runner = SourceRunner(IngestSettings(), pipeline_factory=EmptyPipeline)
    config = parse_sources(
        {"sources": [{"name": "docs", "paths": [docs], "schedule": "*/10 * * * *"}]}
    )
    clock = Clock()
    scheduler = Scheduler(config, runner, clock=clock)
    barrier.wait()
    scheduler.tick()  # plans the first slot
    for n in range(1, SLOTS + 1):
        clock.now = T0.replace(minute=0, second=0) + timedelta(minutes=10 * n)
        barrier.wait()  # the three schedulers see the slot come due together
        for name in scheduler.tick():
            fired.put((n, name))
        scheduler.join(timeout=30)
    runner.runs.manifest.close()


def test_three_schedulers_fire_each_slot_once(
    db_url: str | None, data_dir: Path, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n")
    ctx = mp.get_context("fork")
    barrier, fired = ctx.Barrier(3), ctx.Queue()
    procs = [
        ctx.Process(target=scheduler_process, args=(str(docs), barrier, fired)) for _ in range(3)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0, 0, 0]
    slots = []
    while not fired.empty():
        slots.append(fired.get(timeout=5))
    assert sorted(slots) == [(n, "docs") for n in range(1, SLOTS + 1)]  # once each, none lost
    store = RunStore(Manifest.open(IngestSettings(data_dir=data_dir)))
    try:
        runs = store.recent("docs", limit=50)
        assert len(runs) == SLOTS and {r.outcome for r in runs} == {"succeeded"}
        assert {r.trigger for r in runs} == {"schedule"}
    finally:
        store.manifest.close()


def test_a_taken_slot_is_skipped_with_a_logged_reason(
    db_url: str | None, data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runner = SourceRunner(IngestSettings(), pipeline_factory=EmptyPipeline)
    config = parse_sources(
        {"sources": [{"name": "docs", "paths": [str(tmp_path)], "schedule": "*/10 * * * *"}]}
    )
    clock = Clock()
    scheduler = Scheduler(config, runner, clock=clock)
    try:
        scheduler.tick()
        slot = T0.replace(minute=10, second=0)
        assert runner.runs.claim_tick("docs", slot.astimezone(UTC).isoformat()) is None
        clock.now = slot  # another scheduler took this slot first (here: the claim above)
        with caplog.at_level(logging.INFO, logger="ingest.schedule"):
            assert scheduler.tick() == []
        assert "scheduled run of" in caplog.text and "skipped: fired by pid=" in caplog.text
        clock.now = slot + timedelta(minutes=10)
        assert scheduler.tick() == ["docs"]  # the next slot is free
        scheduler.join(timeout=30)
        assert runner.runs.claim_tick("wiki", slot.astimezone(UTC).isoformat()) is None
    finally:
        runner.runs.manifest.close()
