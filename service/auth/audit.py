"""The audit log: who asked what of which collections, and which documents came back.

Append-only JSON lines under ``<data dir>/audit/`` (``audit-YYYY-MM-DD.jsonl``, UTC days,
owner-only), apart from the application and reasoning logs. One line per HTTP request,
written when the response has finished (streams included) or the client went away:

    time, request_id, key_id, key_name, method, route, path, collections, document_ids,
    chunk_ids, status, latency_ms, client (and "aborted": true for a dropped stream)

The request id is the one the service answers with (``X-Request-ID``, the same id as
in the reasoning log); responses without one get the middleware's own. Never document
text, questions or answers. Lines are written with a single ``O_APPEND``
write, so several worker processes can share a file without interleaving.

``AuditMiddleware`` opens a record per request and makes it reachable through a context
variable; the auth dependency and retrieval fill it in with ``note_caller`` and
``note_search`` / ``note_documents`` without knowing about HTTP.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

from service.caller import Caller

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

FILE_PREFIX = "audit-"
log = logging.getLogger(__name__)


@dataclass(slots=True)
class AuditRecord:
    """One request's audit facts, filled in as the request proceeds."""

    request_id: str
    method: str
    path: str
    client: str | None = None
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    started: float = field(default_factory=perf_counter)
    route: str | None = None
    key_id: str | None = None
    key_name: str | None = None
    collections: list[str] = field(default_factory=list)
    document_ids: list[str] = field(default_factory=list)
    chunk_ids: list[str] = field(default_factory=list)
    status: int | None = None
    aborted: bool = False

    def line(self) -> dict[str, Any]:
        """The JSON object written for this record."""
        out: dict[str, Any] = {
            "time": self.time,
            "request_id": self.request_id,
            "key_id": self.key_id,
            "key_name": self.key_name,
            "method": self.method,
            "route": self.route or self.path,
            "path": self.path,
            "collections": self.collections,
            "document_ids": self.document_ids,
            "chunk_ids": self.chunk_ids,
            "status": self.status,
            "latency_ms": round((perf_counter() - self.started) * 1000, 2),
            "client": self.client,
        }
        if self.aborted:
            out["aborted"] = True
        return out


_CURRENT: contextvars.ContextVar[AuditRecord | None] = contextvars.ContextVar(
    "inhouse_audit", default=None
)


def current() -> AuditRecord | None:
    """The record of the request being served, if any (None outside a request)."""
    return _CURRENT.get()


def note_caller(caller: Caller) -> None:
    record = _CURRENT.get()
    if record is not None:
        record.key_id, record.key_name = caller.id, caller.name


def _extend_unique(target: list[str], items: Iterable[str]) -> None:
    seen = set(target)
    for item in items:
        if item and item not in seen:
            seen.add(item)
            target.append(item)


def note_request_id(request_id: str) -> None:
    """Adopt the id the service gave the request (so audit and reasoning logs join)."""
    record = _CURRENT.get()
    if record is not None:
        record.request_id = request_id


def note_search(collections: Sequence[str], hits: Iterable[Any] = ()) -> None:
    """Record the collections searched and the chunks returned (``ingest.index.Hit``s; a
    passage's every chunk, ``service.passages``)."""
    from ingest.index import META_DOCUMENT_ID
    from service.passages import META_PASSAGE_CHUNKS

    record = _CURRENT.get()
    if record is None:
        return
    _extend_unique(record.collections, collections)
    hit_list = list(hits)
    _extend_unique(
        record.chunk_ids,
        (cid for h in hit_list for cid in h.metadata.get(META_PASSAGE_CHUNKS, (h.id,))),
    )
    _extend_unique(
        record.document_ids, (str(h.metadata.get(META_DOCUMENT_ID, "")) for h in hit_list)
    )


def note_documents(collections: Sequence[str], document_ids: Iterable[str]) -> None:
    """Record documents read, listed, downloaded or deleted."""
    record = _CURRENT.get()
    if record is None:
        return
    _extend_unique(record.collections, collections)
    _extend_unique(record.document_ids, document_ids)


class AuditLog:
    """Appends audit lines to one file per UTC day and reads them back."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def path_for(self, day: str) -> Path:
        return self.dir / f"{FILE_PREFIX}{day}.jsonl"

    def write(self, entry: dict[str, Any]) -> None:
        """Append one line (one ``write`` call on an ``O_APPEND`` descriptor)."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        day = str(entry.get("time", ""))[:10] or datetime.now(UTC).date().isoformat()
        data = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path_for(day), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def files(self) -> list[Path]:
        """Audit files, oldest first."""
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.glob(f"{FILE_PREFIX}*.jsonl") if p.is_file())

    def tail(self, n: int) -> list[dict[str, Any]]:
        """The last ``n`` entries, oldest first (reads newest files until it has enough)."""
        if n <= 0:
            return []
        out: list[dict[str, Any]] = []
        for path in reversed(self.files()):
            lines = path.read_text(encoding="utf-8").splitlines()
            out[:0] = [json.loads(line) for line in lines[-(n - len(out)) :] if line.strip()]
            if len(out) >= n:
                break
        return out[-n:]

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry, oldest first."""
        for path in self.files():
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        yield json.loads(line)


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}" if client else None


def _with_request_id(message: Message, record: AuditRecord) -> Message:
    """Adopt the id the app gave the request (``X-Request-ID``), or send ours."""
    headers = list(message.get("headers") or [])
    for name, value in headers:
        if name.lower() == b"x-request-id":
            record.request_id = value.decode("latin-1")
            return message
    headers.append((b"x-request-id", record.request_id.encode("latin-1")))
    return dict(message, headers=headers)


class AuditMiddleware:
    """Pure ASGI middleware: one audit line per HTTP request, after the last body byte."""

    def __init__(self, app: Any, log: AuditLog, new_request_id: Any) -> None:
        self.app = app
        self.log = log
        self.new_request_id = new_request_id

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = AuditRecord(
            request_id=self.new_request_id(),
            method=scope.get("method", ""),
            path=scope.get("path", ""),
            client=_client(scope),
        )
        scope.setdefault("state", {})["audit"] = record
        token = _CURRENT.set(record)
        finished = False

        async def send_wrapper(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.start":
                record.status = int(message["status"])
                message = _with_request_id(message, record)
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            if record.status is None:
                record.status = 500
            raise
        finally:
            _CURRENT.reset(token)
            route = scope.get("route")
            record.route = getattr(route, "path", None)
            record.aborted = record.status is not None and not finished
            try:
                self.log.write(record.line())
            except OSError as exc:  # the response is gone already; make the gap loud
                log.error("audit log write failed for request %s: %s", record.request_id, exc)
