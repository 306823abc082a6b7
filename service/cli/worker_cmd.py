"""``inhouse worker [--sources FILE] [--metrics-port N]``: run the re-index schedules.

Runs in the foreground; ``--metrics-port`` serves the ingest series (``service.metrics``)
on their own port, loopback unless ``--metrics-host`` / ``INHOUSE_METRICS__WORKER_HOST``.

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


def configure_logging() -> None:
    """Text (control characters escaped) or JSON lines, as INHOUSE_LOG_FORMAT says."""
    from service.logjson import configure_logging

    configure_logging(logging.INFO, LOG_FORMAT, sys.stderr)


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
    from ingest.settings import IngestSettings
    from ingest.sources import sources_from_settings

    port = args.metrics_port
    if port is not None and not 0 < port < 65536:
        return fail_usage(f"--metrics-port must be between 1 and 65535, not {port}")
    settings = IngestSettings()
    try:
        config = sources_from_settings(args.sources or settings.sources)
    except IngestError as exc:
        return fail_usage(exc.message)
    try:
        configure_logging()
    except ValueError as exc:  # pydantic's ValidationError: INHOUSE_LOG_FORMAT
        return fail_usage(f"invalid settings: {exc}")
    observer = None
    server = None
    if port is not None:
        from service.metrics import serve_worker_metrics, worker_metrics_host

        host = args.metrics_host or worker_metrics_host()
        try:
            observer, server = serve_worker_metrics(host, port)
        except OSError as exc:
            return fail_usage(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}")
        logging.getLogger("inhouse.worker").info("metrics on http://%s:%d/metrics", host, port)
    scheduler = Scheduler(config, SourceRunner(settings, observer=observer))
    install_stop_handlers(scheduler.stop_event)
    try:
        scheduler.run_forever()
    finally:
        if server is not None:
            server.shutdown()
    return 0
