"""Control characters out of human-readable output: one helper for logs and CLI renderers.

Request paths, file names, key names and parser messages come from outside. Printed or
logged raw, a newline forges a log line and an escape sequence rewrites the terminal.
``escape_control`` shows them as visible escapes (``\\n``, ``\\x1b``, ``\\u202e``);
``EscapingFormatter`` applies it to every log line (tracebacks keep their line breaks);
``service.cli.output`` applies it to everything the CLI prints. JSON output needs none
(its encoder escapes control characters already).
"""

from __future__ import annotations

import logging
import sys
import unicodedata
from typing import Any, TextIO

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _unsafe(ch: str) -> bool:
    # Cc: C0/C1 controls and DEL; Zl/Zp: Unicode line and paragraph separators; bidi
    # controls reorder what is shown (other format characters, e.g. ZWJ, are kept).
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI


def escape_control(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` with every control or invisible format character written as an escape.

    ``keep_newlines`` leaves ``\\n`` (and tabs) as they are, for multi-line text such as a
    traceback or an answer; everything else is still escaped.
    """
    value = str(text)
    if value.isprintable():
        return value
    out = []
    for ch in value:
        if keep_newlines and ch in "\n\t":
            out.append(ch)
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        elif _unsafe(ch):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


class EscapingFormatter(logging.Formatter):
    """A formatter whose lines cannot be split or recoloured by the values they carry."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging API)
        return escape_control(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:  # noqa: N802
        return escape_control(super().formatException(ei), keep_newlines=True)

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return escape_control(super().formatStack(stack_info), keep_newlines=True)


def configure_logging(level: int | str, fmt: str, stream: TextIO | None = None) -> None:
    """Root logging to ``stream`` (stderr) through an ``EscapingFormatter``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(EscapingFormatter(fmt))
    logging.basicConfig(level=level, handlers=[handler])
