"""Shared CLI output helpers: JSON to stdout, human text through rich, errors to stderr.

Human-readable output never carries raw control characters: ``console()`` escapes them
(newlines kept, for multi-line text) in every string it prints, and ``shown(value)`` is for
values from outside (paths, names, messages) put into a line: control characters and
newlines escaped, rich markup neutralised (``service.textsafe.escape_control``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape as escape_markup
from rich.text import Text

from service.textsafe import escape_control

USAGE_ERROR = 2


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.flush()


class SafeConsole(Console):
    """A rich console that escapes control characters in every string it prints."""

    def print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: A003
        cleaned = [
            escape_control(o, keep_newlines=True) if isinstance(o, str) else o for o in objects
        ]
        super().print(*cleaned, **kwargs)


def console(*, stderr: bool = False) -> Console:
    return SafeConsole(stderr=stderr, highlight=False)


def shown(value: object) -> str:
    """An outside value (path, name, message) made safe to put into a printed line."""
    return escape_markup(escape_control(value))


def fail_usage(message: str) -> int:
    """Report a usage error (bad path, bad name, wrong setup) and return exit code 2."""
    console(stderr=True).print(Text.assemble(("error: ", "bold red"), escape_control(message)))
    return USAGE_ERROR
