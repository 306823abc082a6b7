"""The web chat: ``/`` (the page) and ``/static/...`` (its scripts, styles and icons).

Served without a key (the page signs in with one), under a strict Content-Security-Policy:
everything from this origin only, no inline script or style, no plugins, no framing, and
Trusted Types required, so no string can reach an HTML or script sink even by mistake.
Only files inside ``web/`` with a known asset extension are served.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from service.errors import NotFound

WEB_DIR = Path(__file__).resolve().parents[3] / "web"
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'"
)
ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,100}")  # fullmatch only
HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def asset_path(web_dir: Path, relative: str) -> Path:
    """The file for ``/static/<relative>``; ``NotFound`` for anything else."""
    parts = relative.split("/")
    if not all(SEGMENT.fullmatch(p) and ".." not in p for p in parts):
        raise NotFound("no such asset")
    path = web_dir.joinpath(*parts)
    if path.suffix not in ASSET_TYPES:
        raise NotFound("no such asset")
    resolved = path.resolve()
    if not resolved.is_relative_to(web_dir.resolve()) or not resolved.is_file():
        raise NotFound("no such asset")
    return resolved


@router.api_route("/", methods=["GET", "HEAD"])
async def page() -> FileResponse:
    """The chat page."""
    return FileResponse(
        WEB_DIR / "index.html", media_type="text/html; charset=utf-8", headers=HEADERS
    )


@router.api_route("/static/{relative:path}", methods=["GET", "HEAD"])
async def asset(relative: str) -> FileResponse:
    """A script, style sheet or icon of the page."""
    path = asset_path(WEB_DIR, relative)
    return FileResponse(path, media_type=ASSET_TYPES[path.suffix], headers=HEADERS)
