"""Wire access control into an app: the key gate, the audit log, hardening.

``install_access(app, settings)`` is called once by ``create_app``. Middleware order, outer
to inner: proxy headers (only from ``INHOUSE_SECURITY__TRUSTED_PROXIES``) -> audit (sees
every final status, 413s and CORS preflights included) -> security headers -> CORS
(allow-list; absent by default) -> body limit (a declared oversize is refused unread) ->
auth gate (a key before any body is read; upload slots) -> the app. The auth dependency
(``service.api.deps.require_caller``) finds the gate at ``app.state.access`` and reuses a
caller the gate already authenticated.
"""

from __future__ import annotations

from typing import Any

from service.auth.access import AccessControl, open_access
from service.auth.audit import AuditLog, AuditMiddleware
from service.auth.gate import AuthGateMiddleware, ProxyHeadersMiddleware
from service.auth.hardening import BodyLimitMiddleware, SecurityHeadersMiddleware, add_cors
from service.auth.signin import open_signin
from service.settings import ServiceSettings

MIB = 1024 * 1024


def install_access(app: Any, settings: ServiceSettings) -> AccessControl:
    """Open the key store (start-up checks and warnings) and add the middleware (their
    errors answer through ``service.api.errors``, the one mapping to HTTP)."""
    from service.reasoning_log import new_request_id

    resources = getattr(app.state, "resources", None)
    # the app's one database: opening it here checks the schema before the app starts
    database = resources.database() if resources is not None else None
    access = open_access(settings, database)
    app.state.access = access
    app.state.signin = open_signin(settings, database)  # company sign-in, with oidc
    app.add_middleware(
        AuthGateMiddleware,
        uploads_per_key=settings.limits.concurrent_uploads_per_key,
        uploads_total=settings.limits.concurrent_uploads,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        json_bytes=settings.limits.body_bytes,
        upload_bytes=int(settings.limits.upload_mb * MIB),
    )
    add_cors(app, settings.security.cors_origins)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(
        AuditMiddleware, log=AuditLog(settings.audit_dir), new_request_id=new_request_id
    )
    app.add_middleware(ProxyHeadersMiddleware, trusted=settings.security.trusted_proxies)
    return access
