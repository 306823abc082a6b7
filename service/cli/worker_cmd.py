"""``inhouse worker [--sources FILE] [--concurrency N] [--metrics-port N]``: run the re-index
schedules (and, with the queue on, process queued files) in the foreground.

With the work queue on (``INHOUSE_QUEUE__ENABLED``; default on with PostgreSQL) any number
of workers on any number of hosts share the work file by file (``ingest.queue_worker``):
each fires the schedules (one run per tick across all of them) and claims queued files;
``--concurrency`` is its parser process count. Without the queue a source's run executes in
the worker that fires it.

SIGTERM or SIGINT stops it gracefully: queued files it holds go back to the queue at once
(other workers carry on); without the queue, running sources finish their current file,
record their progress and end ``interrupted``. A second signal kills it.
``--metrics-port`` serves the worker's ``inhouse_ingest_*`` and queue series
(``service.metrics``).
"""

from __future__ import annotations

import argparse
import logging
import threading
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
        " processes and hosts: a source already being re-indexed elsewhere is skipped"
        " (logged). With the work queue on (default with PostgreSQL) every worker also"
        " processes queued files of any run. Exit 0 after a clean stop; 2: invalid sources"
        " file or setup.",
    )
    add_sources_option(parser)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="parser processes of this worker (default: INHOUSE_PARSE__WORKERS)",
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


def run(args: argparse.Namespace) -> int:
    from ingest.db import open_database
    from ingest.queue_dispatch import queue_enabled
    from ingest.schedule import Scheduler, SourceRunner

    port = args.metrics_port
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--metrics-port must be between 1 and 65535, not {port}")
    if args.concurrency is not None and not 1 <= args.concurrency <= 32:
        raise UsageError(f"--concurrency must be between 1 and 32, not {args.concurrency}")
    settings, config = load_sources(args)
    if args.concurrency is not None:
        settings.parse.workers = args.concurrency
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
    database = open_database(settings)
    runner = SourceRunner(settings, observer=observer, database=database)
    try:
        if queue_enabled(settings, database):
            _run_queued(settings, config, runner, observer)
        else:
            scheduler = Scheduler(config, runner)
            install_stop_handlers(scheduler.stop_event)
            scheduler.run_forever()
    finally:
        if server is not None:
            server.shutdown()
        database.dispose()
    return 0


def _run_queued(settings: Any, config: Any, runner: Any, observer: Any) -> None:
    """Fire schedules into the queue (a thread) and process queued items (this thread)."""
    from ingest.manifest import Manifest
    from ingest.pipeline import IngestPipeline
    from ingest.queue_dispatch import QueueDispatch
    from ingest.queue_worker import QueueWorker
    from ingest.schedule import Scheduler, check_roots
    from ingest.workqueue import WorkQueue

    database = runner.runs.manifest.db
    queue = WorkQueue(database, lease_s=settings.queue.lease_s)
    scheduler = Scheduler(config, runner, dispatch=QueueDispatch(queue, runner.runs))
    install_stop_handlers(scheduler.stop_event)
    pipeline = IngestPipeline(settings, manifest=Manifest(database))
    worker = QueueWorker(
        queue,
        pipeline,
        runner.runs,
        concurrency=settings.parse.workers,
        stop=scheduler.stop_event,
        observer=observer,
        queue_observer=observer,
        poll_s=settings.queue.poll_s,
        check_roots=lambda paths, coll: check_roots(paths, coll, pipeline.manifest),
    )
    ticks = threading.Thread(target=scheduler.run_forever, name="scheduler", daemon=True)
    ticks.start()
    try:
        worker.run_forever()
    finally:
        scheduler.shutdown()
        ticks.join(timeout=30)
        pipeline.close()
