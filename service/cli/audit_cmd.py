"""``inhouse audit tail [-n N] [--json]``: the latest audit log entries, oldest first."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from service.cli.output import console
from service.textsafe import escape_control


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("audit", help="read the audit log")
    sub = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    tail = sub.add_parser("tail", help="the last N requests: who, which route, which documents")
    tail.add_argument("-n", "--lines", type=int, default=20, help="entries to show (default 20)")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.set_defaults(handler=run_tail)


def run_tail(args: argparse.Namespace) -> int:
    from ingest.settings import load_settings
    from service.auth.audit import AuditLog
    from service.settings import ServiceSettings

    entries = AuditLog(load_settings(ServiceSettings).audit_dir).tail(max(0, args.lines))
    if args.json:
        for entry in entries:
            sys.stdout.write(json.dumps(entry, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return 0
    out = console()
    if not entries:
        out.print("no audit entries yet")
    for e in entries:
        who = f"{e.get('key_name') or '-'} ({e.get('key_id') or 'no key'})"
        colls = ",".join(e.get("collections") or []) or "-"
        line = (
            f"{e.get('time')}  {e.get('status')}  {who}  {e.get('method')} {e.get('route')}"
            f"  collections={colls}  documents={len(e.get('document_ids') or [])}"
            f" chunks={len(e.get('chunk_ids') or [])}  {e.get('latency_ms')} ms"
        )
        out.print(escape_control(line), markup=False)  # one entry, one line, no escapes
    return 0
