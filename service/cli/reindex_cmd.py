"""``inhouse reindex [SOURCE] [--full] [--prune] [--no-wait] [--json]``: re-index on demand;
``inhouse reindex --reembed COLLECTION``: rebuild a collection with a new encoder
(``service.cli.reembed_cmd``)."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli.common import add_sources_option, load_sources, print_run
from service.cli.output import console, fail_usage, print_json, shown


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reindex",
        help="re-index one source, or every enabled source, now",
        description="Run sources of the sources file (INHOUSE_SOURCES) now, in the foreground:"
        " SOURCE, or every enabled source. A run in progress elsewhere is waited for"
        " (--no-wait: skipped). --prune drops the chunks of sources removed from the file"
        " (alone, it re-indexes nothing). --reembed COLLECTION rebuilds one collection with"
        " the configured encoder (INHOUSE_EMBED__MODEL_PATH, __QUANTIZE) from the passages"
        " it stores, beside the serving one, then switches; search never pauses. Exit 0: every run"
        " succeeded; 1: a run failed, was skipped or interrupted, or some files failed;"
        " 2: usage or config error.",
    )
    parser.add_argument("source", nargs="?", default=None, metavar="SOURCE", help="source name")
    parser.add_argument("--full", action="store_true", help="re-parse even unchanged files")
    parser.add_argument(
        "--prune", action="store_true", help="remove chunks of sources no longer configured"
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="skip a source that is being re-indexed"
    )
    parser.add_argument(
        "--reembed",
        default=None,
        metavar="COLLECTION",
        help="rebuild COLLECTION with the configured encoder, then switch to it",
    )
    parser.add_argument(
        "--force", action="store_true", help="--reembed even if it records this encoder"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON report")
    add_sources_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ingest.errors import IngestError
    from ingest.schedule import SourceBusy, SourceRunner
    from service.cli.common import ProgressBar, install_stop_handlers

    if args.reembed is not None:
        from service.cli import reembed_cmd

        return reembed_cmd.run(args)
    settings, config = load_sources(args)
    if args.source is not None:
        source = config.get(args.source)
        if source is None:
            known = ", ".join(config.names) or "none"
            return fail_usage(f"no source named {args.source!r} (configured: {known})")
        targets = [source]
    elif args.prune:
        targets = []
    else:
        targets = [s for s in config.sources if s.enabled]
    runner = SourceRunner(settings)
    install_stop_handlers(runner.stop_event)
    out = console()
    result: dict[str, Any] = {"pruned": [], "runs": [], "skipped": []}
    if args.prune:
        result["pruned"] = runner.prune(config)
        if not args.json:
            for item in result["pruned"]:
                out.print(
                    f"pruned [bold]{item['source']}[/]: {item['documents_removed']} documents"
                    f" of {shown(item['root'])} from {item['collection']}"
                )
            if not result["pruned"]:
                out.print("nothing to prune")
    for source in targets:
        if runner.stop_event.is_set():
            result["skipped"].append({"source": source.name, "reason": "stopped"})
            continue
        wait = 0 if args.no_wait else None
        try:
            if args.json:
                record = runner.run(source, full=args.full, wait=wait)
            else:
                out.print(f"[bold]{source.name}[/] -> {source.collection}")
                with ProgressBar() as bar:
                    record = runner.run(source, full=args.full, wait=wait, listener=bar)
        except SourceBusy as exc:
            result["skipped"].append({"source": source.name, "reason": exc.message})
            if not args.json:
                out.print(f"[yellow]skipped[/] {source.name}: {shown(exc.message)}")
            continue
        except IngestError as exc:
            return fail_usage(f"{exc.code}: {exc.message}")
        result["runs"].append(record.to_dict())
        if not args.json:
            _print_run(record.to_dict())
    if args.json:
        print_json(result)
    ok = all(r["outcome"] == "succeeded" for r in result["runs"]) and not result["skipped"]
    return 0 if ok else 1


def _print_run(run: dict[str, Any]) -> None:
    print_run(console(), run, f"[bold]{run['source']}[/]: {run['outcome']}")
