"""``inhouse db upgrade|status``: the shared-state database's schema.

``upgrade`` applies the Alembic revisions this version carries and imports the SQLite files
of versions before the shared database (then renamed ``*.imported``); ``status`` shows the
revision, the newest one and the URL (password hidden). Exit 2 when the database cannot be
reached or is newer than this version.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from service.cli.output import console, print_json, shown


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("db", help="upgrade or inspect the shared-state database")
    sub = parser.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    upgrade = sub.add_parser(
        "upgrade",
        help="apply schema migrations and import legacy data-dir files (idempotent)",
        description="Bring the database (INHOUSE_DATABASE_URL, default: SQLite in the data dir)"
        " to this version's schema, and import the manifest, run history, keys and sessions"
        " of older data dirs once. Back the database up first.",
    )
    upgrade.add_argument("--json", action="store_true", help="print JSON")
    upgrade.set_defaults(handler=run_upgrade)
    status = sub.add_parser("status", help="show the schema revision and the database URL")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=run_status)


def _database() -> Any:
    from ingest.db import open_database
    from ingest.settings import IngestSettings, load_settings

    return open_database(load_settings(IngestSettings), check=False)


def _run(action: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    from sqlalchemy.exc import OperationalError

    db = _database()
    try:
        return action(db)
    except OperationalError as exc:
        raise db.unavailable(exc) from None
    finally:
        db.dispose()


def run_upgrade(args: argparse.Namespace) -> int:
    from ingest.db.migrate import upgrade

    result = _run(upgrade)
    if args.json:
        print_json(result)
        return 0
    out = console()
    if result["migrated"]:
        before = result["from_revision"] or "empty"
        out.print(f"{shown(result['url'])}: schema {before} -> {result['revision']}")
    else:
        out.print(f"{shown(result['url'])}: schema {result['revision']} (up to date)")
    for table, count in result["imported"].items():
        out.print(f"  imported {count} {table} rows")
    for path in result["renamed"]:
        out.print(f"  legacy file kept as {shown(path)}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from ingest.db.migrate import status

    result = _run(status)
    if args.json:
        print_json(result)
        return 0
    out = console()
    out.print(f"database  {shown(result['url'])} ({result['dialect']})")
    out.print(f"revision  {result['revision'] or 'none'} (head {result['head']})")
    for path in result["legacy_files"]:
        out.print(f"legacy    {shown(path)} (imported by `inhouse db upgrade`)")
    out.print("up to date" if result["up_to_date"] else "needs `inhouse db upgrade`")
    return 0
