"""HTTP hardening: body size limits, security headers, closed-by-default CORS, upload names.

* ``BodyLimitMiddleware``: 413 ``payload_too_large`` for a body over the limit, whether
  announced by Content-Length or streamed chunked; the upload route
  (``POST /v1/collections/{name}/documents``) gets the upload limit, every other request
  the (much smaller) JSON limit, whatever its content type.
* ``SecurityHeadersMiddleware``: a CSP with ``default-src 'self'`` and no inline script,
  ``frame-ancestors 'none'`` + ``X-Frame-Options: DENY``, ``nosniff``, ``no-referrer``, and
  ``Cache-Control: no-store`` on API responses (answers are private).
* ``add_cors``: only the origins in ``INHOUSE_SECURITY__CORS_ORIGINS``; none by default.
* ``safe_upload_name`` / ``upload_path``: a file name reduced to one harmless path component,
  and its place inside ``<uploads>/<collection>/``, never outside.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

from service.errors import PayloadTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
UPLOAD_SLACK_BYTES = 64 * 1024  # multipart boundaries and part headers around the file


class BodyLimitMiddleware:
    """Refuse request bodies over the limit with 413 ``payload_too_large``."""

    def __init__(self, app: Any, *, json_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self.json_bytes = json_bytes
        self.upload_bytes = upload_bytes + UPLOAD_SLACK_BYTES

    def limit_for(self, scope: Scope) -> int:
        from service.auth.gate import is_upload

        return self.upload_bytes if is_upload(scope) else self.json_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        message = f"request body over the {limit:,}-byte limit"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(send, message)
            return
        seen = 0
        overflow = False
        app_started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal seen, overflow
            msg: Message = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    overflow = True
                    return {"type": "http.disconnect"}  # the app stops reading
            return msg

        async def guarded_send(msg: Message) -> None:
            nonlocal app_started, refused
            if overflow and not app_started:
                if not refused:  # swallow the app's own reaction; answer 413 once
                    refused = True
                    await self._refuse(send, message)
                return
            app_started = app_started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not overflow:
                raise
        if overflow and not refused and not app_started:
            await self._refuse(send, message)

    @staticmethod
    async def _refuse(send: Any, message: str) -> None:
        from service.api.errors import send_error

        await send_error(send, PayloadTooLarge(message), close=True)


class SecurityHeadersMiddleware:
    """Add the security headers to every HTTP response (an app-set header wins)."""

    def __init__(self, app: Any, *, api_prefix: str = "/v1/") -> None:
        self.app = app
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = str(scope.get("path", "")).startswith(self.api_prefix)

        async def send_with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                extra = list(SECURITY_HEADERS)
                if is_api:
                    extra.append((b"cache-control", b"no-store"))
                headers.extend((k, v) for k, v in extra if k not in present)
                msg = dict(msg, headers=headers)
            await send(msg)

        await self.app(scope, receive, send_with_headers)


def add_cors(app: Any, origins: Sequence[str]) -> bool:
    """Allow cross-origin calls from ``origins`` only; no origins = no CORS at all (closed)."""
    if not origins:
        return False
    from starlette.middleware.cors import CORSMiddleware

    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=False,  # keys travel in the Authorization header, not cookies
        max_age=600,
    )
    return True


_UNSAFE = re.compile(r"[^\w.\- ()+,@=]+", re.UNICODE)
_WINDOWS_RESERVED = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?", re.IGNORECASE)
MAX_NAME_BYTES = 200


def safe_upload_name(filename: str) -> str:
    """One harmless path component from a client-supplied file name; ``ValueError`` if none.

    Keeps the last component of any ``/`` or ``\\`` path, NFC-normalises, drops control
    characters, replaces anything outside letters, digits and ``._-()+,@=`` and spaces with
    ``_``, strips leading dots (no hidden files, no ``..``) and trims to 200 bytes keeping
    the extension.
    """
    name = unicodedata.normalize("NFC", filename or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .")  # leading dots: hidden or parent
    name = re.sub(r"\s+", " ", name)
    if _WINDOWS_RESERVED.fullmatch(name):
        name = "_" + name
    if not name or set(name) <= {"_", "."}:
        raise ValueError(f"unusable file name {filename!r}")
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 16:
        stem, dot, ext = name, "", ""
    while len((stem + dot + ext).encode()) > MAX_NAME_BYTES and stem:
        stem = stem[:-1]
    return (stem + dot + ext) if stem else name.encode()[:MAX_NAME_BYTES].decode(errors="ignore")


def upload_path(upload_root: Path, collection: str, filename: str) -> Path:
    """Where an upload of ``filename`` into ``collection`` goes: inside its area, or ``ValueError``.

    The area is ``<upload_root>/<collection>/``. The result is checked after resolving
    symlinks, so a planted link cannot carry a write outside the area. Write to a temporary
    file in the same folder and ``os.replace`` it onto this path: that replaces a link rather
    than writing through it.
    """
    from ingest.settings import validate_collection_name

    area = (upload_root / validate_collection_name(collection)).resolve()
    target = area / safe_upload_name(filename)
    resolved = target.resolve()
    if resolved.parent != area or not resolved.is_relative_to(area):
        raise ValueError(f"file name {filename!r} leads outside the upload area")
    return target
