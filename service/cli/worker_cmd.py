"""``inhouse worker [--sources FILE]``: run the re-index schedules in the foreground.

SIGTERM or SIGINT stops it gracefully: running sources finish their current file, record
their progress and end ``interrupted``; the next run resumes. A second signal kills it.
"""

from __future__ import annotations

import argparse
from typing import Any

from service.cli.common import (
    add_sources_option,
    configure_logging,
    install_stop_handlers,
    load_sources,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="re-index the configured sources on their schedules (foreground)",
        description="Run every enabled source of the sources file (INHOUSE_SOURCES) on its"
        " cron schedule until SIGTERM/SIGINT. One run per source at a time, across"
        " processes: a source already being re-indexed elsewhere is skipped (logged)."
        " Exit 0 after a clean stop; 2: invalid sources file or setup.",
    )
    add_sources_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ingest.schedule import Scheduler, SourceRunner

    settings, config = load_sources(args)
    configure_logging()
    scheduler = Scheduler(config, SourceRunner(settings))
    install_stop_handlers(scheduler.stop_event)
    scheduler.run_forever()
    return 0
