"""``inhouse ingest PATH... [--collection NAME] [--json] [--workers N] [--full]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from service.cli.common import ProgressBar
from service.cli.output import console, fail_usage, print_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="index files and folders into a collection (incremental)",
        description="Parse, chunk and embed documents into the index. Unchanged files are"
        " skipped; files gone from a scanned folder are removed from the index."
        " Exit 0: nothing failed; 1: some files failed (the rest are indexed); 2: usage error.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    parser.add_argument("--collection", default=None, help="target collection (default: main)")
    parser.add_argument("--json", action="store_true", help="print one JSON report")
    parser.add_argument("--workers", type=int, default=None, help="parser worker processes")
    parser.add_argument("--full", action="store_true", help="re-parse even unchanged files")
    parser.add_argument("--include", action="append", default=[], help="glob to include")
    parser.add_argument("--exclude", action="append", default=[], help="glob to exclude")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ingest.errors import IngestError
    from ingest.pipeline import IngestPipeline
    from ingest.settings import IngestSettings, load_settings, validate_collection_name

    settings = load_settings(IngestSettings)
    collection = args.collection or settings.default_collection
    try:
        validate_collection_name(collection)
    except ValueError as exc:
        return fail_usage(str(exc))
    if args.workers is not None and args.workers < 1:
        return fail_usage("--workers must be at least 1")
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        return fail_usage(f"no such file or folder: {', '.join(missing)}")
    pipeline = IngestPipeline(settings)
    run_args: dict[str, Any] = {
        "full": args.full,
        "include": args.include,
        "exclude": args.exclude,
        "workers": args.workers,
    }
    try:
        if args.json:
            report = pipeline.run(args.paths, collection, **run_args)
        else:
            with ProgressBar() as bar:
                report = pipeline.run(args.paths, collection, listener=bar, **run_args)
    except IngestError as exc:
        return fail_usage(f"{exc.code}: {exc.message}")
    finally:
        pipeline.close()
    if args.json:
        print_json(report.to_dict())
    else:
        _print_summary(report.to_dict())
    return 1 if report.failed else 0


def _print_summary(report: dict[str, Any]) -> None:
    out = console()
    counts = report["counts"]
    out.print(
        f"[bold]{report['collection']}[/]: {counts['indexed']} indexed, {counts['unchanged']}"
        f" unchanged, {counts['removed']} removed, {counts['failed']} failed;"
        f" {report['chunks_written']} chunks, {report['pages_indexed']} pages"
        f" in {report['elapsed_s']:.1f}s"
    )
    for reason, count in sorted(report["failures_by_reason"].items()):
        out.print(f"  failed ({reason}): {count}")
