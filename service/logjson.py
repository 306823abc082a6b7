"""The application log's format: text (default) or one JSON object per line.

``INHOUSE_LOG_FORMAT=json`` (``inhouse serve`` and ``inhouse worker``) writes each record as

    {"ts": "2026-01-01T12:00:00.123Z", "level": "INFO", "logger": "service.answer",
     "message": "...", "request_id": "...", "caller": "key id", "timings": {...}}

``request_id`` and ``caller`` come from the record (``extra=``) or else from the request
being served (the audit record, ``service.auth.audit.current()``); ``status`` and
``timings`` from the record. Question text and reasoning are never written: fields named
in ``CONTENT_FIELDS`` are dropped unless ``INHOUSE_LOG_CONTENT=true`` (a debugging aid;
the reasoning log keeps questions anyway). Messages themselves carry ids and counts only.
The audit log is separate and unchanged.

The line is ASCII (``ensure_ascii``): control characters, line separators and bidi
controls in a value are escaped, so a value can never forge or split a line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

CONTENT_FIELDS = ("question", "reasoning", "answer")
FIELDS = ("request_id", "caller", "status", "timings")


class LogSettings(BaseSettings):
    """``INHOUSE_LOG_FORMAT`` and ``INHOUSE_LOG_CONTENT`` (read by the CLI at start)."""

    model_config = SettingsConfigDict(env_prefix="INHOUSE_LOG_", extra="ignore")

    format: Literal["text", "json"] = Field(
        "text", description="text (human-readable lines) or json (one object per line)."
    )
    content: bool = Field(
        False,
        description="JSON logs only: also write question text (debugging; off by default).",
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, request_id, caller, timings."""

    def __init__(self, *, content: bool = False) -> None:
        super().__init__()
        self.content = content

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id, caller = _request_context()
        out["request_id"] = getattr(record, "request_id", None) or request_id
        out["caller"] = getattr(record, "caller", None) or caller
        for name in FIELDS[2:]:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if self.content:
            for name in CONTENT_FIELDS:
                value = getattr(record, name, None)
                if value is not None:
                    out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=True, default=str, separators=(",", ":"))


def _request_context() -> tuple[str | None, str | None]:
    """(request id, caller id) of the HTTP request being served, if any."""
    from service.auth import audit

    record = audit.current()
    if record is None:
        return None, None
    return record.request_id, record.key_id


def configure_logging(
    level: int | str,
    text_format: str,
    stream: TextIO | None = None,
    settings: LogSettings | None = None,
) -> LogSettings:
    """Root logging in the configured format (``INHOUSE_LOG_FORMAT``); returns the settings.

    Text lines go through ``service.textsafe.EscapingFormatter`` with ``text_format``.
    """
    from service.textsafe import EscapingFormatter

    settings = settings or LogSettings()
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter(content=settings.content))
    else:
        handler.setFormatter(EscapingFormatter(text_format))
    logging.basicConfig(level=level, handlers=[handler])
    return settings
