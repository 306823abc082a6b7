"""Authenticate before any body is read; bound concurrent uploads; believe proxies only if told.

* ``AuthGateMiddleware``: a ``/v1/`` request that carries a body (POST, PUT, PATCH,
  DELETE) is authenticated from its headers first, so a caller without a valid key gets its
  401 before a byte of body is read (FastAPI reads and parses the body before running the
  route's dependencies). The caller is kept in the request scope and ``require_caller``
  reuses it (one rate-limit hit per request). An upload also needs scope ``ingest`` on its
  collection up front, and takes one of the concurrent-upload slots: over the key's share
  429 ``too_many_uploads``, over the service-wide total 503 ``uploads_busy``.
* ``ProxyHeadersMiddleware``: ``X-Forwarded-For`` rewrites the client address only when
  the peer is one of ``INHOUSE_SECURITY__TRUSTED_PROXIES`` (none by default), and only to
  a well-formed IP address (the right-most one that is not itself a trusted proxy).
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import MutableMapping, Sequence
from typing import Any
from urllib.parse import unquote

from service.caller import SCOPE_INGEST, Caller
from service.errors import AuthError, RateLimited, TooManyUploads, UploadsBusy

Scope = MutableMapping[str, Any]

CALLER_STATE = "inhouse_caller"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UPLOAD_ROUTE = re.compile(r"/v1/collections/([^/]+)/documents")
RETRY_AFTER_S = 5


def is_upload(scope: Scope) -> bool:
    """Whether the request is ``POST /v1/collections/{name}/documents``."""
    return (
        scope.get("method") == "POST" and UPLOAD_ROUTE.fullmatch(scope.get("path", "")) is not None
    )


def cached_caller(scope: Scope) -> Caller | None:
    """The caller the gate authenticated for this request, if any."""
    state = scope.get("state")
    caller = state.get(CALLER_STATE) if isinstance(state, dict) else None
    return caller if isinstance(caller, Caller) else None


class UploadSlots:
    """Counts uploads in flight, per key and in total."""

    def __init__(self, per_key: int, total: int) -> None:
        self.per_key = per_key
        self.total = total
        self._active: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key_id: str) -> None:
        """Take a slot for ``key_id``; ``TooManyUploads`` / ``UploadsBusy`` when none is free."""
        with self._lock:
            mine = self._active.get(key_id, 0)
            if mine >= self.per_key:
                raise TooManyUploads(
                    f"this key already has {mine} upload(s) in progress (limit {self.per_key});"
                    " retry when one has finished",
                    retry_after=RETRY_AFTER_S,
                )
            if sum(self._active.values()) >= self.total:
                raise UploadsBusy(
                    f"the service is busy with {self.total} uploads; retry shortly",
                    retry_after=RETRY_AFTER_S,
                )
            self._active[key_id] = mine + 1

    def release(self, key_id: str) -> None:
        with self._lock:
            left = self._active.get(key_id, 0) - 1
            if left > 0:
                self._active[key_id] = left
            else:
                self._active.pop(key_id, None)


class AuthGateMiddleware:
    """Refuse unauthenticated bodies before reading them; cap concurrent uploads."""

    def __init__(self, app: Any, *, uploads_per_key: int, uploads_total: int) -> None:
        self.app = app
        self.slots = UploadSlots(uploads_per_key, uploads_total)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        if (
            scope["type"] != "http"
            or scope.get("method") not in BODY_METHODS
            or not path.startswith("/v1/")
        ):
            await self.app(scope, receive, send)
            return
        from service.caller import require

        upload = is_upload(scope)
        try:
            caller = await self._authenticate(scope)
            if upload:
                match = UPLOAD_ROUTE.fullmatch(path)
                assert match is not None
                require(caller, SCOPE_INGEST, unquote(match.group(1)))
                self.slots.acquire(caller.id)
        except (AuthError, RateLimited, UploadsBusy) as exc:
            from service.api.errors import send_error

            await send_error(send, exc)
            return
        scope.setdefault("state", {})[CALLER_STATE] = caller
        try:
            await self.app(scope, receive, send)
        finally:
            if upload:
                self.slots.release(caller.id)

    @staticmethod
    async def _authenticate(scope: Scope) -> Caller:
        app = scope.get("app")
        access = getattr(getattr(app, "state", None), "access", None)
        if access is None:
            raise AuthError("access control is not configured for this app")
        signin = getattr(getattr(app, "state", None), "signin", None)
        if signin is not None:  # a signed-in browser: its session cookie, CSRF-checked
            from starlette.requests import Request

            from service.auth.signin import request_caller

            session_caller = await request_caller(signin, Request(scope))
            if session_caller is not None:
                await access.admit(session_caller)
                return session_caller
        authorization = None
        for name, value in scope.get("headers") or []:
            if name.lower() == b"authorization":
                authorization = value.decode("latin-1")
                break
        client = scope.get("client")
        caller: Caller = await access.authenticate_async(
            authorization, client[0] if client else None
        )
        return caller


class ProxyHeadersMiddleware:
    """Take the client address from ``X-Forwarded-For`` only when a trusted proxy sent it."""

    def __init__(self, app: Any, *, trusted: Sequence[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(item, strict=False) for item in trusted]

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def forwarded_client(self, header: str) -> str | None:
        """The right-most address not a trusted proxy; None if any entry is malformed."""
        for entry in reversed([part.strip() for part in header.split(",")]):
            try:
                ip = ipaddress.ip_address(entry)
            except ValueError:
                return None
            if not self.trusts(str(ip)):
                return str(ip)
        return None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and self.networks and client:
            if self.trusts(client[0]):
                values = [
                    v.decode("latin-1")
                    for k, v in scope.get("headers") or []
                    if k.lower() == b"x-forwarded-for"
                ]
                forwarded = self.forwarded_client(",".join(values)) if values else None
                if forwarded is not None:
                    scope["client"] = (forwarded, 0)
        await self.app(scope, receive, send)
