"""``inhouse worker [--sources FILE]``: run the re-index schedules in the foreground.

SIGTERM or SIGINT stops it gracefully: running sources finish their current file, record
their progress and end ``interrupted``; the next run resumes. A second signal kills it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from service.cli.output import fail_usage

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="re-index the configured sources on their schedules (foreground)",
        description="Run every enabled source of the sources file (INHOUSE_SOURCES) on its"
        " cron schedule until SIGTERM/SIGINT. One run per source at a time, across"
        " processes: a source already being re-indexed elsewhere is skipped (logged)."
        " Exit 0 after a clean stop; 2: invalid sources file or setup.",
    )
    parser.add_argument(
        "--sources", type=Path, default=None, help="sources YAML (default: INHOUSE_SOURCES)"
    )
    parser.set_defaults(handler=run)


def configure_logging() -> None:
    from service.textsafe import configure_logging

    configure_logging(logging.INFO, LOG_FORMAT, sys.stderr)  # control characters escaped


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


def run(args: argparse.Namespace) -> int:
    from ingest.errors import IngestError
    from ingest.schedule import Scheduler, SourceRunner
    from ingest.settings import IngestSettings, load_settings
    from ingest.sources import sources_from_settings

    settings = load_settings(IngestSettings)
    try:
        config = sources_from_settings(args.sources or settings.sources)
    except IngestError as exc:
        return fail_usage(exc.message)
    configure_logging()
    scheduler = Scheduler(config, SourceRunner(settings))
    install_stop_handlers(scheduler.stop_event)
    scheduler.run_forever()
    return 0
