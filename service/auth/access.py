"""The gate every protected request passes: bearer key -> ``Caller``, rate limits, audit.

``open_access(settings)`` runs at start-up: with ``INHOUSE_AUTH=keys`` (the default) it opens
the key store, installs ``INHOUSE_ADMIN_KEY`` if given (hashed), and, when no key exists yet,
logs how to create the first admin key — the service then refuses every protected request
(401) until one exists; it never runs open by accident. ``INHOUSE_AUTH=disabled`` admits
everyone as the ``anonymous`` admin and says so loudly at start.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from anyio import to_thread

from service.auth.audit import note_caller
from service.auth.keys import KeyStore
from service.auth.ratelimit import open_limiter
from service.caller import ANONYMOUS, Caller
from service.errors import AuthError, RateLimited
from service.settings import ServiceSettings

if TYPE_CHECKING:
    from ingest.db import Database

log = logging.getLogger(__name__)

AUTH_DISABLED = ANONYMOUS  # every scope, every collection
FIRST_KEY_HELP = (
    "No API keys exist yet, so every request except /healthz and /readyz gets 401. Create the"
    " first admin key with:  inhouse keys create --name admin --scopes admin --collections '*'"
    "  (it is printed once), or start with INHOUSE_ADMIN_KEY set to a secret of 32+ characters."
)
DISABLED_WARNING = (
    "!!! INHOUSE_AUTH=disabled: API keys are OFF. Anyone who can reach this port reads every"
    " collection, the reasoning log and can delete documents. Local demos only. !!!"
)


class AccessControl:
    """Verifies ``Authorization: Bearer <key>`` and applies the per-key rate limit."""

    def __init__(self, settings: ServiceSettings, store: KeyStore | None) -> None:
        if settings.auth != "disabled" and store is None:
            raise ValueError(f"INHOUSE_AUTH={settings.auth} needs a key store")
        self.enabled = settings.auth != "disabled"
        self.keys = "keys" in settings.auth_modes  # oidc alone: the store only for management
        self.store = store
        # shared by every replica when the database is PostgreSQL (service.auth.ratelimit)
        db = store.db if store is not None else None
        self.limiter = open_limiter(settings.security.rate_limit, "key", db)
        self.failures = open_limiter(settings.security.auth_failure_limit, "auth-failure", db)

    def authenticate(self, authorization: str | None, client: str | None = None) -> Caller:
        """The caller for an ``Authorization`` header value; ``AuthError`` / ``RateLimited``."""
        caller = self._verify(authorization, client)
        note_caller(caller)
        if self.enabled:
            self.limiter.hit(caller.id)
        return caller

    async def authenticate_async(
        self, authorization: str | None, client: str | None = None
    ) -> Caller:
        """``authenticate`` for the event loop: the key lookup and the rate-limit count
        (database round trips, with PostgreSQL over the network) run in worker threads;
        the caller is noted for the audit in the request's own context."""
        caller = await to_thread.run_sync(self._verify, authorization, client)
        note_caller(caller)
        if self.enabled:
            await to_thread.run_sync(self.limiter.hit, caller.id)
        return caller

    def _verify(self, authorization: str | None, client: str | None) -> Caller:
        if not self.enabled:
            return AUTH_DISABLED
        assert self.store is not None
        if not self.keys:
            raise AuthError("API keys are off here (INHOUSE_AUTH=oidc): sign in at /auth/login")
        token = bearer_token(authorization)  # missing or malformed: 401, not a guess
        try:
            return self.store.verify(token)
        except AuthError:
            self._count_failure(client or "unknown")
            raise

    async def admit(self, caller: Caller) -> None:
        """Audit and rate-limit a caller authenticated another way (a session); the count
        runs in a worker thread."""
        note_caller(caller)
        await to_thread.run_sync(self.limiter.hit, caller.id)

    def _count_failure(self, address: str) -> None:
        """Slow down guessing from one address: over the limit, failures become 429s.

        A valid key is never refused for its address's failures: behind a proxy every
        caller shares one address, and a stranger's bad keys must not lock them out.
        """
        wait = self.failures.exceeded(address)
        if wait is not None:
            raise RateLimited(
                f"too many failed authentications; retry in {wait} s", retry_after=wait
            )
        self.failures.hit(address)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def bearer_token(authorization: str | None) -> str:
    """The key from ``Bearer <key>``; ``AuthError`` when missing or malformed."""
    if not authorization:
        raise AuthError("missing API key: send 'Authorization: Bearer <key>'")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("malformed Authorization header: expected 'Bearer <key>'")
    return token


def open_access(settings: ServiceSettings, database: Database | None = None) -> AccessControl:
    """Start-up: open the key store, install INHOUSE_ADMIN_KEY, warn about open or keyless.
    ``database``: the app's shared-state database (default: the store opens its own)."""
    if settings.auth == "disabled":
        log.warning(DISABLED_WARNING)
        return AccessControl(settings, None)
    store = KeyStore(settings.data_dir, database)
    if settings.admin_key is not None:
        record, outcome = store.install(settings.admin_key.get_secret_value())
        if outcome == "revoked":
            log.warning("INHOUSE_ADMIN_KEY matches revoked key %s: it stays revoked", record.key_id)
        else:
            log.info("INHOUSE_ADMIN_KEY %s as key %s", outcome, record.key_id)
    if "keys" in settings.auth_modes and store.active_count() == 0:
        log.warning(FIRST_KEY_HELP)
    return AccessControl(settings, store)
