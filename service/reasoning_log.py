"""The reasoning log: R1's reasoning, kept apart from the application log.

JSON lines under ``settings.reasoning_dir``, one file per UTC day
(``reasoning-YYYY-MM-DD.jsonl``, owner-only permissions). A record holds
request_id, time, caller id (and name), collections, question, model, reasoning text, status,
token counts and durations. Files older than the retention period are purged on start
and daily. Request ids begin with their millisecond timestamp, so a lookup reads only
the file(s) of that day.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from anyio import to_thread

log = logging.getLogger(__name__)

FILE_RE = re.compile(r"reasoning-(\d{4}-\d{2}-\d{2})\.jsonl")  # fullmatch only
REQUEST_ID_RE = re.compile(r"[0-9a-f]{24}")


def new_request_id() -> str:
    """24 hex characters: 12 of millisecond timestamp, 12 random."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


def request_day(request_id: str) -> date | None:
    """The UTC day a request id was issued, or None for a foreign id."""
    if not REQUEST_ID_RE.fullmatch(request_id):
        return None
    try:
        return datetime.fromtimestamp(int(request_id[:12], 16) / 1000, UTC).date()
    except (ValueError, OverflowError, OSError):
        return None


@dataclass(frozen=True, slots=True)
class ReasoningRecord:
    """One model request's reasoning and what it took."""

    request_id: str
    time: str  # ISO 8601, UTC, when the request started
    caller_id: str
    collections: list[str]
    question: str
    model: str
    reasoning: str
    status: str = "ok"  # ok | cancelled | an error code
    usage: dict[str, int] = field(default_factory=dict)
    durations_ms: dict[str, float] = field(default_factory=dict)
    caller_name: str = ""  # the key's name, or a signed-in user's display name

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))


class ReasoningLog:
    """Append, look up and purge reasoning records (thread-safe within a process)."""

    def __init__(
        self,
        directory: Path,
        retention_days: int,
        *,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.directory = directory
        self.retention_days = retention_days
        self._today = today
        self._lock = threading.Lock()

    def path_for(self, day: date) -> Path:
        return self.directory / f"reasoning-{day.isoformat()}.jsonl"

    def write(self, record: ReasoningRecord) -> None:
        """Append one record to today's file (created owner-only)."""
        line = (record.to_json() + "\n").encode("utf-8")
        path = self.path_for(self._today())
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def get(self, request_id: str) -> dict[str, Any] | None:
        """The record of ``request_id`` (the latest when written twice), or None."""
        day = request_day(request_id)
        if day is not None:
            candidates = [self.path_for(day), self.path_for(day + timedelta(days=1))]
        else:
            candidates = sorted(self._files(), reverse=True)
        for path in candidates:
            found = self._scan(path, request_id)
            if found is not None:
                return found
        return None

    def _scan(self, path: Path, request_id: str) -> dict[str, Any] | None:
        needle = f'"request_id":{json.dumps(request_id)}'
        found = None
        try:
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    if needle in line:
                        try:
                            record = json.loads(line)
                        except ValueError:
                            continue  # a torn last line after a crash
                        if record.get("request_id") == request_id:
                            found = record
        except FileNotFoundError:
            return None
        return found

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return [p for p in self.directory.iterdir() if FILE_RE.fullmatch(p.name)]

    def purge(self) -> list[Path]:
        """Delete files older than the retention period; return what was deleted."""
        cutoff = self._today() - timedelta(days=self.retention_days)
        removed = []
        for path in self._files():
            match = FILE_RE.fullmatch(path.name)
            if match and date.fromisoformat(match.group(1)) < cutoff:
                path.unlink(missing_ok=True)
                removed.append(path)
        if removed:
            log.info("reasoning log: purged %d file(s) older than %s", len(removed), cutoff)
        return removed

    async def purge_daily(self) -> None:
        """Purge now and then every day shortly after UTC midnight, until cancelled."""
        while True:
            try:
                await to_thread.run_sync(self.purge)
            except OSError as exc:
                log.warning("reasoning log purge failed: %s", exc)
            now = datetime.now(UTC)
            tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
            await asyncio.sleep((tomorrow - now).total_seconds() + 60)
