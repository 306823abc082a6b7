"""``inhouse index status [--json]``: collections, document and chunk counts, failures."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli.output import console, fail_usage, print_json, shown


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("index", help="inspect the index")
    sub = parser.add_subparsers(dest="index_command", metavar="SUBCOMMAND", required=True)
    status = sub.add_parser("status", help="collections, documents, chunks, failures by reason")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=run_status)


def run_status(args: argparse.Namespace) -> int:
    from ingest.errors import IngestError
    from ingest.settings import IngestSettings, load_settings
    from ingest.status import index_status

    settings = load_settings(IngestSettings)
    try:
        status = index_status(settings)
    except IngestError as exc:
        return fail_usage(f"{exc.code}: {exc.message}")
    if args.json:
        print_json(status)
        return 0
    out = console()
    out.print(f"data dir: {shown(status['data_dir'])}")
    if not status["collections"]:
        out.print("no collections yet: run `inhouse ingest PATH`")
    for coll in status["collections"]:
        failures = ", ".join(f"{k}: {v}" for k, v in sorted(coll["failures_by_reason"].items()))
        out.print(
            f"[bold]{coll['name']}[/]: {coll['documents']} documents indexed"
            f" ({coll['failed']} failed, {coll['pending']} pending), {coll['chunks']} chunks"
            + (f"; failures: {failures}" if failures else "")
        )
    for name, reader in status.get("readers", {}).items():
        if reader["available"]:
            detail = f"{reader.get('version', '?')}: " + ", ".join(reader["formats"])
            if reader.get("languages"):
                detail += f" (languages: {'+'.join(reader['languages'])})"
        else:
            detail = (
                "switched off"
                if reader.get("installed") and not reader.get("enabled", True)
                else f"not installed (apt install {reader['package']})"
            )
        out.print(f"reader {name}: {detail}")
    return 0
