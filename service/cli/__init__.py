"""``inhouse``: the one command-line entry point; each command group lives in its own module.

Exit codes: 0 success, 1 the work ran but something failed (e.g. some files), 2 usage error
(an invalid ``INHOUSE_*`` setting included: the message names the variable).
Heavy libraries are imported inside commands so ``inhouse --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import ingest  # noqa: F401  (zero-egress environment before anything else)
from service.cli import (
    ask_cmd,
    audit_cmd,
    db_cmd,
    eval_cmd,
    index_cmd,
    ingest_cmd,
    keys_cmd,
    reindex_cmd,
    serve_cmd,
    sources_cmd,
    worker_cmd,
)

# Each module exposes register(subparsers) and sets a ``handler`` default returning an exit code.
COMMAND_MODULES = [
    ingest_cmd,
    index_cmd,
    worker_cmd,
    reindex_cmd,
    sources_cmd,
    keys_cmd,
    audit_cmd,
    db_cmd,
    serve_cmd,
    ask_cmd,
    eval_cmd,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inhouse", description="Private-document question answering, on your own machines."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ingest.settings import SettingsError
    from service.cli.common import UsageError
    from service.cli.output import fail_usage

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (SettingsError, UsageError) as exc:  # SettingsError: ingest.settings.load_settings
        return fail_usage(str(exc))


if __name__ == "__main__":
    sys.exit(main())
