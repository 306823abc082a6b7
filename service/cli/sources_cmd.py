"""``inhouse sources [--json]``: per source the running run, the last runs and the next run."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli.common import add_sources_option, load_sources, print_run
from service.cli.output import console, fail_usage, print_json, shown


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sources",
        help="configured sources: progress, last runs, next run",
        description="Show every source of the sources file (INHOUSE_SOURCES): the progress of"
        " a running re-index (files done / total, ETA), the last runs (outcome, counts,"
        " failures with reasons) and the next scheduled run.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--runs", type=int, default=5, help="last runs shown per source")
    add_sources_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ingest.manifest import Manifest
    from ingest.queue_dispatch import queue_enabled
    from ingest.runs import RunStore
    from ingest.schedule import local_now
    from ingest.source_status import sources_status
    from ingest.workqueue import WorkQueue

    settings, config = load_sources(args)
    if args.runs < 0:
        return fail_usage("--runs must be 0 or more")
    settings.ensure_data_dir()
    manifest = Manifest.open(settings)
    progress = None
    if queue_enabled(settings, manifest.db):
        progress = WorkQueue(manifest.db).progress
    try:
        status = sources_status(
            config, RunStore(manifest), now=local_now(), history=args.runs, progress=progress
        ).to_dict()
    finally:
        manifest.close()
    if args.json:
        print_json(status)
    else:
        _print_status(status)
    return 0


def _print_status(status: dict[str, Any]) -> None:
    out = console()
    for source in status["sources"]:
        state = "" if source["enabled"] else " [yellow](disabled)[/]"
        out.print(
            f"[bold]{source['name']}[/]{state} -> {source['collection']}"
            f"  schedule {source['schedule']!r}  paths: {shown(', '.join(source['paths']))}"
        )
        if source["next_run_at"] is None:
            out.print("  next run: none (disabled)")
        elif source["scheduler"]:
            out.print(
                f"  next run: {source['next_run_at']} (worker pid {source['scheduler']['pid']})"
            )
        else:
            out.print(f"  next run: {source['next_run_at']} [dim](no worker running)[/]")
        running = source["running"]
        if running:
            prog = running["progress"]
            total = "?" if prog["files_total"] is None else prog["files_total"]
            eta = "" if prog["eta_s"] is None else f", ETA {prog['eta_s']:.0f}s"
            if prog.get("workers"):
                eta += f", {prog['workers']} workers"
            out.print(
                f"  [cyan]running[/] since {running['started_at']}:"
                f" {prog['files_done']}/{total} files{eta}"
            )
        if not source["last_runs"]:
            out.print("  no runs yet")
        for item in source["last_runs"]:
            if item["outcome"] == "running":
                continue
            title = f"{item['started_at']} {item['outcome']} ({item['trigger']})"
            print_run(out, item, title, indent="  ")
    for gone in status["removed"]:
        roots = ", ".join(f"{r['collection']}: {shown(r['root'])}" for r in gone["roots"])
        roots = roots or "no roots"
        out.print(
            f"[yellow]{gone['name']}[/]: removed from the sources file; its chunks stay until"
            f" `inhouse reindex --prune` ({roots})"
        )
    if not status["sources"] and not status["removed"]:
        out.print("no sources configured")
