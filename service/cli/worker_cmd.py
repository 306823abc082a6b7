"""``inhouse worker [--sources FILE] [--metrics-port N]``: run the re-index schedules in the
foreground.

SIGTERM or SIGINT stops it gracefully: running sources finish their current file, record
their progress and end ``interrupted``; the next run resumes. A second signal kills it.
``--metrics-port`` serves the worker's ``inhouse_ingest_*`` series (``service.metrics``).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from service.cli.common import (
    UsageError,
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
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve the worker's inhouse_ingest_* Prometheus series on this port (GET /metrics)",
    )
    parser.add_argument(
        "--metrics-host",
        default=None,
        help="address for --metrics-port (default: INHOUSE_METRICS__WORKER_HOST, else 127.0.0.1)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ingest.schedule import Scheduler, SourceRunner

    port = args.metrics_port
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--metrics-port must be between 1 and 65535, not {port}")
    settings, config = load_sources(args)
    configure_logging()
    observer = None
    server = None
    if port is not None:
        from service.metrics import serve_worker_metrics, worker_metrics_host

        host = args.metrics_host or worker_metrics_host()
        try:
            observer, server = serve_worker_metrics(host, port)
        except OSError as exc:
            message = f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
            raise UsageError(message) from None
        logging.getLogger("inhouse.worker").info("metrics on http://%s:%d/metrics", host, port)
    scheduler = Scheduler(config, SourceRunner(settings, observer=observer))
    install_stop_handlers(scheduler.stop_event)
    try:
        scheduler.run_forever()
    finally:
        if server is not None:
            server.shutdown()
    return 0
