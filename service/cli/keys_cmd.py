"""``inhouse keys create|list|revoke``: API keys for the query service.

``create`` prints the key once, alone on stdout (``KEY=$(inhouse keys create ...)`` works);
only a keyed hash is stored. Keys live in the shared-state database (``INHOUSE_DATABASE_URL``,
default SQLite in the data dir); revocation takes
effect on the service's next request, no restart needed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from service.cli.output import console, fail_usage, print_json, shown


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="create, list and revoke API keys")
    sub = parser.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)

    create = sub.add_parser("create", help="create a key (shown once)")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument(
        "--scopes",
        required=True,
        help="comma-separated: query, ingest, reasoning:read, metrics, admin",
    )
    create.add_argument(
        "--collections",
        help="comma-separated collection names, or '*' for all (admin keys: all)",
    )
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(handler=run_create)

    listing = sub.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument("--active", action="store_true", help="hide revoked keys")
    listing.set_defaults(handler=run_list)

    revoke = sub.add_parser("revoke", help="revoke a key by id (effective at once)")
    revoke.add_argument("key_id", metavar="ID", help="key id as shown by `inhouse keys list`")
    revoke.add_argument("--json", action="store_true", help="print JSON")
    revoke.set_defaults(handler=run_revoke)


def _store() -> Any:
    from ingest.settings import load_settings
    from service.auth.keys import KeyStore
    from service.settings import ServiceSettings

    return KeyStore(load_settings(ServiceSettings).data_dir)


def _split(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def run_create(args: argparse.Namespace) -> int:
    scopes = _split(args.scopes)
    collections = _split(args.collections)
    if not collections:
        if "admin" not in scopes:
            return fail_usage("give --collections NAME[,NAME...] or --collections '*'")
        collections = ["*"]
    try:
        new = _store().create(args.name, scopes, collections)
    except ValueError as exc:
        return fail_usage(str(exc))
    record = new.record
    if args.json:
        print_json({"key": new.key, **record.as_dict()})
        return 0
    sys.stdout.write(new.key + "\n")
    sys.stdout.flush()
    err = console_err()
    err.print(
        f"created key [bold]{record.key_id}[/] ({record.name}): scopes"
        f" {', '.join(record.scopes)}; collections {', '.join(record.collections)}"
    )
    err.print("[yellow]Store it now: it is shown only this once (only a hash is kept).[/]")
    return 0


def console_err() -> Any:
    return console(stderr=True)


def run_list(args: argparse.Namespace) -> int:
    records = _store().records(include_revoked=not args.active)
    if args.json:
        print_json([r.as_dict() for r in records])
        return 0
    out = console()
    if not records:
        out.print("no keys yet: inhouse keys create --name admin --scopes admin")
        return 0
    from rich.table import Table

    table = Table("id", "name", "scopes", "collections", "created", "status", box=None)
    for r in records:
        status = "active" if r.active else f"revoked {r.revoked_at}"
        table.add_row(
            r.key_id,
            shown(r.name),
            ",".join(r.scopes),
            ",".join(r.collections),
            r.created_at,
            status,
        )
    out.print(table)
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    store = _store()
    before = store.get(args.key_id)
    if before is None:
        return fail_usage(f"no key with id {args.key_id!r} (see `inhouse keys list`)")
    record = store.revoke(args.key_id)
    if args.json:
        print_json(record.as_dict())
        return 0
    if before.active:
        console().print(
            f"revoked key {record.key_id} ({shown(record.name)}) at {record.revoked_at}"
        )
    else:
        console().print(f"key {record.key_id} was already revoked at {record.revoked_at}")
    return 0
