"""``inhouse reindex --reembed COLLECTION [--force] [--no-wait] [--json]``: rebuild a collection
with the configured encoder (``INHOUSE_EMBED__MODEL_PATH``) beside the serving one, then switch
(``ingest.reembed``)."""

from __future__ import annotations

import argparse

from service.cli.common import RichProgress
from service.cli.output import console, fail_usage, print_json, shown


class ReembedProgress(RichProgress):
    """Re-embed progress: chunks embedded/total, chunks per second, ETA; then the stages."""

    def __init__(self) -> None:
        super().__init__("re-embedding")

    def on_progress(self, done: int, total: int) -> None:
        self._advance(done, done / self._elapsed(), "chunks")

    def on_stage(self, stage: str) -> None:
        self._progress.console.print(f"  {stage}")


def run(args: argparse.Namespace) -> int:
    from ingest.errors import IngestError
    from ingest.locks import LockBusy
    from ingest.reembed import Reembedder
    from ingest.settings import IngestSettings, load_settings, validate_collection_name

    if args.source is not None or args.prune or args.full:
        return fail_usage("--reembed takes a collection alone (no SOURCE, --full or --prune)")
    try:
        name = validate_collection_name(args.reembed)
    except ValueError as exc:
        return fail_usage(str(exc))
    settings = load_settings(IngestSettings)
    reembedder = Reembedder(settings)
    wait = 0 if args.no_wait else None
    try:
        if args.json:
            report = reembedder.run(name, force=args.force, wait=wait)
        else:
            console().print(f"[bold]{shown(name)}[/]: rebuilding with the configured encoder")
            with ReembedProgress() as bar:
                report = reembedder.run(name, force=args.force, wait=wait, listener=bar)
    except LockBusy as exc:
        if args.json:
            print_json({"collection": name, "outcome": "skipped", "reason": str(exc)})
        else:
            console().print(f"[yellow]skipped[/] {shown(name)}: {shown(exc)}")
        return 1
    except IngestError as exc:
        return fail_usage(f"{exc.code}: {exc.message}")
    result = report.to_dict()
    if args.json:
        print_json(result)
        return 0
    out = console()
    if report.outcome == "unchanged":
        out.print(
            f"[bold]{shown(name)}[/] already uses {shown(report.to_embedder['name'])}"
            f" ({report.chunks} chunks): nothing to rebuild (--force rebuilds anyway)"
        )
    else:
        out.print(
            f"[bold]{shown(name)}[/]: switched from {shown(report.from_embedder['name'])}"
            f" to {shown(report.to_embedder['name'])} ({report.to_embedder['dimension']} dims):"
            f" {report.chunks} chunks, {report.embedded} embedded, {report.resumed} resumed,"
            f" in {report.timings_s['total']:.1f} s"
        )
    if report.dropped:
        out.print(f"  dropped {shown(', '.join(report.dropped))}")
    return 0
