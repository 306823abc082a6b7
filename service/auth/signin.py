"""Company sign-in: logins, sessions, the session ``Caller``, CSRF, sign-out.

``SignIn`` ties the providers (``service.auth.oidc``), the session store
(``service.auth.sessions``) and the policy (``service.auth.policy``) together:

* ``start``: a pending login (state, nonce, PKCE verifier) and the provider's URL;
* ``complete``: the callback: state must match the browser's login cookie and a pending
  login (consumed once), the code is exchanged, the ID token verified, groups read from
  it or from userinfo; a missing groups claim refuses the sign-in (the provider is not
  configured to send it, and nobody should silently get the no-group view);
* ``caller``: the cookie's session -> the ACL's ``Caller``, after the idle and absolute
  timeouts, re-reading groups at the provider every ``groups_refresh_s`` (someone removed
  from a group loses its collections by the next refresh; a provider that no longer
  knows the user ends the session);
* ``check_csrf``: a cookie-authenticated request that changes state must come from our own
  origin (``Origin``, when sent) and carry the session's ``X-CSRF-Token``.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from starlette.requests import Request

from service.auth.oidc import NotPermitted, OIDCProvider, SignInFailed
from service.auth.oidc_settings import OIDCSettings
from service.auth.policy import Policy
from service.auth.sessions import PendingLogin, SessionRecord, SessionStore, new_csrf, new_ref
from service.caller import Caller
from service.errors import AuthError, Forbidden
from service.settings import ServiceSettings

if TYPE_CHECKING:
    from ingest.db import Database

log = logging.getLogger(__name__)

SESSION_COOKIE = "inhouse_session"
LOGIN_COOKIE = "inhouse_login"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOUCH_EVERY_S = 15.0  # last_seen is written at most this often (idle timeouts are minutes)


class SignIn:
    """Everything about signed-in users; built at start when ``oidc`` is on."""

    def __init__(
        self,
        settings: OIDCSettings,
        store: SessionStore,
        policy: Policy,
        *,
        clock: Callable[[], float] = time.time,
        providers: dict[str, OIDCProvider] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.policy = policy
        self.clock = clock
        self.providers = providers or {
            name: OIDCProvider(name, p, timeout_s=settings.http_timeout_s, clock=clock)
            for name, p in settings.all_providers().items()
        }
        self.idle_s = settings.session_idle_minutes * 60
        self.absolute_s = settings.session_absolute_hours * 3600

    def provider(self, name: str | None) -> OIDCProvider:
        if name is None and len(self.providers) == 1:
            return next(iter(self.providers.values()))
        if name is None or name not in self.providers:
            raise SignInFailed("unknown identity provider; choose one on the sign-in page")
        return self.providers[name]

    def base_url(self, request_base: str) -> str:
        return self.settings.redirect_base_url or request_base.rstrip("/")

    # -- login --------------------------------------------------------------------------
    async def start(self, provider_name: str | None, next_url: str, base: str) -> tuple[str, str]:
        """(URL at the provider, state for the browser's login cookie)."""
        provider = self.provider(provider_name)
        login = PendingLogin(
            state=secrets.token_urlsafe(24),
            provider=provider.name,
            nonce=secrets.token_urlsafe(24),
            verifier=secrets.token_urlsafe(48),
            next_url=next_url if _local_path(next_url) else "/",
            created_at=self.clock(),
        )
        url = await provider.authorization_url(
            f"{base}/auth/callback", login.state, login.nonce, login.verifier
        )
        self.store.add_pending(login)
        return url, login.state

    async def complete(
        self, state: str, cookie_state: str | None, code: str, base: str
    ) -> tuple[str, SessionRecord, str]:
        """The callback: (session token for the cookie, its record, where to go next)."""
        if not cookie_state or not secrets.compare_digest(state, cookie_state):
            raise SignInFailed(
                "state mismatch: this sign-in was not started in this browser; start again"
            )
        login = self.store.pop_pending(state, self.clock())
        if login is None:
            raise SignInFailed("this sign-in link was already used or has expired; start again")
        provider = self.provider(login.provider)
        tokens = await provider.exchange(code, f"{base}/auth/callback", login.verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed("the provider sent no ID token (is 'openid' among the scopes?)")
        claims = await provider.verify_id_token(id_token, login.nonce)
        access = str(tokens.get("access_token") or "")
        info = await self._userinfo(provider, claims, access)
        identity = provider.identity(claims, info or {})
        if identity.groups is None:
            raise NotPermitted(
                f"the identity provider sent no {provider.settings.groups_claim!r} claim, so"
                " your groups (and what you may read) are unknown; ask your administrator to"
                " add the groups claim to the Inhouse app registration"
            )
        now = self.clock()
        record = SessionRecord(
            ref=new_ref(),
            provider=provider.name,
            subject=identity.subject,
            name=identity.name,
            email=identity.email,
            groups=identity.groups,
            created_at=now,
            last_seen=now,
            groups_at=now,
            csrf=new_csrf(),
            id_token=id_token,
            access_token=access,
            refresh_token=str(tokens.get("refresh_token") or ""),
        )
        token = self.store.create(record)
        log.info("signed in: %s (%s) via %s, session %s", record.subject, record.name,
                 provider.name, record.ref)  # fmt: skip
        return token, record, login.next_url

    async def _userinfo(
        self, provider: OIDCProvider, claims: dict[str, object], access: str
    ) -> dict[str, object] | None:
        """Userinfo, read when the ID token lacks the groups claim (or a name)."""
        wanted = [provider.settings.groups_claim, provider.settings.name_claim]
        if all(not c or c in claims for c in wanted) or not access:
            return None
        info = await provider.userinfo(access)
        if info is not None and str(info.get("sub")) != str(claims.get("sub")):
            raise SignInFailed("the provider's userinfo names another user")
        return info

    # -- per request --------------------------------------------------------------------
    async def session(self, token: str) -> SessionRecord:
        """The live session for a cookie token (timeouts applied, groups fresh)."""
        record = self.store.by_token(token) if token else None
        if record is None or not record.active:
            raise AuthError("not signed in (or the session was ended): sign in again")
        now = self.clock()
        if now - record.last_seen > self.idle_s:
            self.store.end(record.ref, now)
            raise AuthError("your session expired after inactivity: sign in again")
        if now - record.created_at > self.absolute_s:
            self.store.end(record.ref, now)
            raise AuthError("your session reached its maximum length: sign in again")
        refreshed = now - record.groups_at >= self.settings.groups_refresh_s
        if refreshed:
            record = await self._refresh(record, now)
        if refreshed or now - record.last_seen >= TOUCH_EVERY_S:
            record = replace(record, last_seen=now)
            self.store.update(record)
        return record

    def caller(self, record: SessionRecord) -> Caller:
        """The session's ``Caller``: id ``user:<subject>`` (``user:<provider>:<subject>``
        for a second provider), the display name, and what the policy grants."""
        caller_id = (
            f"user:{record.subject}"
            if record.provider == "default" or len(self.providers) == 1
            else f"user:{record.provider}:{record.subject}"
        )
        return self.policy.caller(
            caller_id, record.name, record.subject, record.email, record.groups
        )

    async def _refresh(self, record: SessionRecord, now: float) -> SessionRecord:
        """Re-read the user's groups at the provider; end the session if it says no."""
        provider = self.providers.get(record.provider)
        if provider is None:
            self.store.end(record.ref, now)
            raise AuthError("your identity provider is no longer configured: sign in again")
        access, refresh, id_token = record.access_token, record.refresh_token, record.id_token
        info = await provider.userinfo(access) if access else None
        claims: dict[str, object] = {}
        wanted = provider.settings.groups_claim
        if info is None or (wanted and wanted not in info):
            # The access token expired, or userinfo omits groups (Entra ID): the refresh
            # grant gives a new access token and, from most providers, a new ID token.
            tokens = await provider.refresh(refresh) if refresh else None
            if tokens is None:
                info = None  # the provider no longer vouches for this user
            else:
                access = str(tokens.get("access_token") or "")
                refresh = str(tokens.get("refresh_token") or refresh)
                new_id = tokens.get("id_token")
                if isinstance(new_id, str):
                    claims = await provider.verify_id_token(new_id, None)
                    id_token = new_id
                if info is None and access:
                    info = await provider.userinfo(access)
        if info is None and not claims:
            self.store.end(record.ref, now)
            log.info("session %s of %s ended: the provider no longer vouches", record.ref,
                     record.subject)  # fmt: skip
            raise AuthError(
                "your sign-in is no longer valid at the identity provider: sign in again"
            )
        identity = provider.identity(info or {}, claims)
        if identity.subject != record.subject:
            self.store.end(record.ref, now)
            raise AuthError("the identity provider now names another user: sign in again")
        if identity.groups is None:
            self.store.end(record.ref, now)
            raise AuthError("the identity provider no longer sends your groups: sign in again")
        groups = identity.groups
        if groups != record.groups:
            log.info("session %s: groups of %s changed", record.ref, record.subject)
        return replace(
            record,
            groups=groups,
            name=identity.name,
            email=identity.email,
            groups_at=now,
            access_token=access,
            refresh_token=refresh,
            id_token=id_token,
        )

    def check_csrf(self, record: SessionRecord, method: str, origin: str | None,
                   header: str | None, own_origin: str) -> None:  # fmt: skip
        """Refuse a cookie-authenticated state change from elsewhere (403)."""
        if method.upper() in SAFE_METHODS:
            return
        if origin is not None and origin.rstrip("/") != own_origin:
            raise Forbidden(
                "cross-origin request refused: a signed-in browser session may only change"
                " things from this service's own pages",
                reason="csrf",
            )
        if not header or not secrets.compare_digest(header, record.csrf):
            raise Forbidden(
                "missing or wrong X-CSRF-Token for a signed-in session (reload the page)",
                reason="csrf",
            )

    # -- sign-out and management --------------------------------------------------------
    async def logout(self, record: SessionRecord, base: str) -> str | None:
        """End the session here; the provider's logout URL when it offers one."""
        self.store.end(record.ref, self.clock())
        provider = self.providers.get(record.provider)
        if provider is None:
            return None
        try:
            return await provider.end_session_url(record.id_token, f"{base}/")
        except SignInFailed:
            return None  # signed out here; the provider is unreachable

    def end(self, ref: str) -> SessionRecord | None:
        return self.store.end(ref, self.clock())

    def active(self) -> list[SessionRecord]:
        now = self.clock()
        return [
            r
            for r in self.store.active()
            if now - r.last_seen <= self.idle_s and now - r.created_at <= self.absolute_s
        ]

    def close(self) -> None:
        self.store.close()


def _local_path(url: str) -> bool:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    return url.startswith("/") and not url.startswith("//") and "\\" not in url


def open_signin(settings: ServiceSettings, database: Database | None = None) -> SignIn | None:
    """Start-up: with ``oidc`` in INHOUSE_AUTH, check the providers, read the policy
    (``PolicyError`` naming the line) and open the session store (in ``database``, the
    app's shared-state database; default: one of its own); else None."""
    from ingest.db import open_database
    from service.auth.policy import load_policy
    from service.auth.sessions import DatabaseSessionStore

    if "oidc" not in settings.auth_modes:
        return None
    problems = settings.oidc.problems()
    if problems:
        raise ValueError("; ".join(problems))
    policy = load_policy(settings.policy)
    if settings.policy is None:
        log.warning(
            "INHOUSE_AUTH includes oidc but INHOUSE_POLICY is not set: signed-in users may"
            " ask but read no collection until a policy grants them some"
        )
    if database is None:
        store = DatabaseSessionStore(open_database(settings), owned=True)
    else:
        store = DatabaseSessionStore(database)
    return SignIn(settings.oidc, store, policy)


def own_origin(signin: SignIn, request: Request) -> str:
    """This service's origin as browsers see it (the redirect base URL, when set)."""
    base = signin.settings.redirect_base_url
    if base:
        scheme, _, rest = base.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"
    return f"{request.url.scheme}://{request.url.netloc}"


async def request_caller(signin: SignIn, request: Request) -> Caller | None:
    """The session ``Caller`` for a request that carries the session cookie (and no
    ``Authorization`` header), CSRF-checked; None when it carries no session cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    if token is None or "authorization" in request.headers:
        return None
    if token.startswith("ih_"):
        raise AuthError("API keys go in the Authorization header, never in a cookie")
    record = await signin.session(token)
    signin.check_csrf(
        record,
        request.method,
        request.headers.get("origin"),
        request.headers.get(CSRF_HEADER),
        own_origin(signin, request),
    )
    request.state.session = record
    return signin.caller(record)
