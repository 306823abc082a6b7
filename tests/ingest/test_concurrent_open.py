"""Processes that open a fresh data dir at the same instant (two workers, a worker and the
CLI) all succeed: creating the manifest database is not a race."""

from __future__ import annotations

from pathlib import Path

from ingest.manifest import Manifest
from ingest.runs import RunStore
from tests.concurrent_start import race


def open_run_store(path: Path) -> None:
    store = RunStore(Manifest(path))
    store.manifest.close()


def test_processes_creating_the_manifest_together_all_succeed(tmp_path: Path) -> None:
    failures = race(
        open_run_store,
        lambda n: tmp_path / f"data{n}" / "manifest.sqlite3",
        processes=4,
        rounds=100,
    )
    assert failures == [], f"{len(failures)} failed opens; first:\n{failures[0]}"
