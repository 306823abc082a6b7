"""Shared CLI output helpers: JSON to stdout, human text through rich, errors to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

USAGE_ERROR = 2


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.flush()


def console() -> Console:
    return Console(highlight=False)


def fail_usage(message: str) -> int:
    """Report a usage error (bad path, bad name, wrong setup) and return exit code 2."""
    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {message}")
    return USAGE_ERROR
