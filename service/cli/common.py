"""Helpers shared by the CLI commands: the progress bar of long runs, the stop handlers of
foreground workers, the one log format of the commands that log (serve, worker, reindex),
and the sources file of the commands that read it (worker, reindex, sources).
Output helpers (JSON, safe console, usage errors) are in ``service.cli.output``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Self

from service.cli.output import console, shown

if TYPE_CHECKING:
    from ingest.settings import IngestSettings
    from ingest.sources import SourcesConfig

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int | str = logging.INFO) -> None:
    """The root logger at ``level`` on stderr: ``LOG_FORMAT`` lines with control characters
    escaped, or JSON lines with ``INHOUSE_LOG_FORMAT=json`` (``service.logjson``); an
    invalid setting raises ``SettingsError`` (exit 2)."""
    from ingest.settings import load_settings
    from service.logjson import LogSettings
    from service.logjson import configure_logging as configure

    configure(level, LOG_FORMAT, sys.stderr, settings=load_settings(LogSettings))


class UsageError(Exception):
    """A wrong invocation or setup found inside a command: ``main`` prints it, exit 2."""


def add_sources_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sources", type=Path, default=None, help="sources YAML (default: INHOUSE_SOURCES)"
    )


def load_sources(args: argparse.Namespace) -> tuple[IngestSettings, SourcesConfig]:
    """The settings and the sources file (``--sources`` or ``INHOUSE_SOURCES``), or
    ``UsageError`` when it is missing or invalid."""
    from ingest.errors import IngestError
    from ingest.settings import IngestSettings, load_settings
    from ingest.sources import sources_from_settings

    settings = load_settings(IngestSettings)
    try:
        return settings, sources_from_settings(args.sources or settings.sources)
    except IngestError as exc:
        raise UsageError(exc.message) from None


def install_stop_handlers(stop: Any) -> None:
    """SIGTERM/SIGINT set ``stop`` (a threading.Event); a second one exits at once."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
        logging.getLogger("inhouse.worker").info(
            "%s: stopping after the current file", signal.Signals(signum).name
        )
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def print_run(out: Any, run: dict[str, Any], title: str, indent: str = "") -> None:
    """One re-index run (``RunRecord.to_dict()``): counts, the run's error, failed files."""
    c = run["counts"]
    out.print(
        f"{indent}{title}: {c['indexed']} indexed, {c['unchanged']} unchanged,"
        f" {c['removed']} removed, {c['failed']} failed"
    )
    if run["error"]:
        out.print(f"{indent}  [red]{shown(run['error'])}[/]")
    for failure in run["failures"]:
        out.print(
            f"{indent}  failed {shown(failure['path'])}: [bold]{failure['reason']}[/]"
            f" {shown(failure['message'])}"
        )


class RichProgress:
    """A rich progress bar on stderr's console: ``label``, done/total, a rate, ETA, and a
    dim "current item" column; a context manager (start/stop)."""

    def __init__(self, label: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[current]}", style="dim"),
            console=console(),
            transient=False,
        )
        self._task: Any = None
        self._started = time.monotonic()

    def __enter__(self) -> Self:
        self._progress.start()
        self._task = self._progress.add_task("work", total=None, rate="", current="")
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def on_start(self, total: int) -> None:
        self._started = time.monotonic()
        self._progress.update(self._task, total=total)

    def _advance(self, done: int, per_second: float, unit: str, current: str = "") -> None:
        self._progress.update(
            self._task, completed=done, rate=f"{per_second:.1f} {unit}/s", current=current
        )

    def _elapsed(self) -> float:
        return max(time.monotonic() - self._started, 1e-6)


class ProgressBar(RichProgress):
    """Ingest progress: files done/total, chunks per second, ETA, the current file."""

    def __init__(self) -> None:
        super().__init__("indexing")
        self._chunks = 0

    def on_file(self, result: Any, done: int, total: int) -> None:
        if result.status == "indexed":
            self._chunks += result.chunks
        self._advance(done, self._chunks / self._elapsed(), "chunks", shown(result.path[-50:]))
        if result.status == "failed":
            self._progress.console.print(
                f"[red]failed[/] {shown(result.path)}: [bold]{result.reason}[/]"
                f" {shown(result.message)}"
            )
