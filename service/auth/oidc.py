"""One OpenID provider as Inhouse talks to it: discovery, PKCE login, ID tokens, userinfo.

The flow goes through Authlib's ``AsyncOAuth2Client`` (authorization URL with state,
nonce and an S256 PKCE challenge; the code exchange; the refresh grant). ID tokens are
verified with joserfc (Authlib's JOSE library) against the provider's JWKS:

1. the signature, with a key the provider publishes (an unknown ``kid`` re-reads the JWKS
   once, for key rotation, then fails);
2. ``iss`` equals the configured issuer (which must also equal discovery's ``issuer``);
3. ``aud`` contains our client id (and ``azp``, when several audiences, is ours);
4. ``exp`` in the future and ``iat`` not in it (60 s leeway), on the injected clock;
5. ``nonce`` equals the one this login sent (a replayed token carries another).

Nothing is contacted until the first sign-in: with no provider configured, Inhouse makes
no outbound request at all (the zero-egress test).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from service.auth.oidc_settings import ProviderSettings
from service.errors import AuthError

LEEWAY_S = 60
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]


class SignInFailed(AuthError):
    """Sign-in refused: the message says why, in words fit for the user, and leaks nothing."""

    code = "sign_in_failed"
    status = 401


class NotPermitted(SignInFailed):
    """The provider vouched for the user, but the answer is no (e.g. no groups claim)."""

    code = "sign_in_refused"
    status = 403


@dataclass(frozen=True, slots=True)
class Identity:
    """Who signed in, as the provider says (claim names from the settings)."""

    subject: str
    name: str
    email: str | None
    groups: tuple[str, ...] | None  # None: the groups claim was absent


class OIDCProvider:
    """Discovery, authorization URL, code exchange, ID token checks, userinfo, refresh."""

    def __init__(
        self,
        name: str,
        settings: ProviderSettings,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        assert settings.issuer is not None
        self.name = name
        self.settings = settings
        self.issuer = settings.issuer
        self.timeout = timeout_s
        self.clock = clock
        self.transport = transport
        self._metadata: dict[str, Any] | None = None
        self._jwks: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    @property
    def label(self) -> str:
        return self.settings.label or httpx.URL(self.issuer).host

    # -- plumbing -----------------------------------------------------------------------
    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.timeout, transport=self.transport)

    def _oauth(self, redirect_uri: str | None = None) -> Any:
        from authlib.integrations.httpx_client import AsyncOAuth2Client

        secret = self.settings.client_secret
        return AsyncOAuth2Client(
            client_id=self.settings.client_id,
            client_secret=secret.get_secret_value() if secret else None,
            scope=self.settings.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            timeout=self.timeout,
            transport=self.transport,
        )

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self._http() as http:
                response = await http.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInFailed(
                f"the identity provider {self.label} could not be reached ({what}):"
                f" {type(exc).__name__}"
            ) from None
        if not isinstance(body, dict):
            raise SignInFailed(f"the identity provider sent a malformed {what}")
        return body

    async def metadata(self) -> dict[str, Any]:
        """The discovery document (read once; its issuer must be the configured one)."""
        async with self._lock:
            if self._metadata is None:
                url = f"{self.issuer}/.well-known/openid-configuration"
                meta = await self._get_json(url, "discovery document")
                if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
                    raise SignInFailed(
                        "wrong issuer: the provider's discovery document names issuer"
                        f" {str(meta.get('issuer'))[:200]!r}, not the configured {self.issuer!r}"
                    )
                for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(meta.get(needed), str):
                        raise SignInFailed(f"the provider's discovery document lacks {needed}")
                self._metadata = meta
            return self._metadata

    async def jwks(self, *, refresh: bool = False) -> dict[str, Any]:
        meta = await self.metadata()
        if self._jwks is None or refresh:
            self._jwks = await self._get_json(str(meta["jwks_uri"]), "key set")
        return self._jwks

    # -- the flow -----------------------------------------------------------------------
    async def authorization_url(
        self, redirect_uri: str, state: str, nonce: str, verifier: str
    ) -> str:
        meta = await self.metadata()
        async with self._oauth(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                str(meta["authorization_endpoint"]),
                state=state,
                code_verifier=verifier,
                nonce=nonce,
            )
        return str(url)

    async def exchange(self, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """The token response for an authorization code (PKCE verifier included)."""
        from authlib.integrations.base_client.errors import OAuthError

        meta = await self.metadata()
        try:
            async with self._oauth(redirect_uri) as client:
                token = await client.fetch_token(
                    str(meta["token_endpoint"]),
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=verifier,
                )
        except OAuthError as exc:
            raise SignInFailed(f"the provider refused the sign-in code ({exc.error})") from None
        except httpx.HTTPError as exc:
            raise SignInFailed(f"the provider could not be reached: {type(exc).__name__}") from None
        return dict(token)

    async def refresh(self, refresh_token: str) -> dict[str, Any] | None:
        """A new token response, or None when the provider refuses (user gone, revoked)."""
        from authlib.integrations.base_client.errors import OAuthError

        meta = await self.metadata()
        try:
            async with self._oauth() as client:
                token = await client.refresh_token(
                    str(meta["token_endpoint"]), refresh_token=refresh_token
                )
        except OAuthError:
            return None
        return dict(token)

    async def userinfo(self, access_token: str) -> dict[str, Any] | None:
        """The userinfo claims, or None when the access token is no longer accepted."""
        meta = await self.metadata()
        url = meta.get("userinfo_endpoint")
        if not isinstance(url, str):
            return None
        try:
            async with self._http() as http:
                response = await http.get(url, headers={"Authorization": f"Bearer {access_token}"})
        except httpx.HTTPError as exc:
            raise SignInFailed(f"the provider could not be reached: {type(exc).__name__}") from None
        if response.status_code in (400, 401, 403):
            return None
        try:
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError):
            raise SignInFailed("the provider sent a malformed userinfo response") from None
        return body if isinstance(body, dict) else None

    async def end_session_url(self, id_token: str, post_logout_redirect: str) -> str | None:
        """RP-initiated logout at the provider, when its discovery offers it."""
        meta = await self.metadata()
        endpoint = meta.get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        query = {"client_id": self.settings.client_id}
        if id_token:
            query["id_token_hint"] = id_token
        query["post_logout_redirect_uri"] = post_logout_redirect
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"

    # -- tokens -------------------------------------------------------------------------
    async def verify_id_token(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        """The ID token's claims after checks 1-5 of the module doc (nonce None: skip 5)."""
        from joserfc import jws
        from joserfc.errors import JoseError

        try:
            header = jws.extract_compact(id_token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError):
            raise SignInFailed("the ID token is malformed") from None
        keys = await self.jwks()
        if not _has_key(keys, header.get("kid")):
            keys = await self.jwks(refresh=True)  # the provider may have rotated its keys
            if not _has_key(keys, header.get("kid")):
                raise SignInFailed(
                    "the ID token is signed with a key the provider does not publish"
                )
        claims = _decode(id_token, keys)
        self.check_claims(claims, nonce)
        return claims

    def check_claims(self, claims: Mapping[str, Any], nonce: str | None) -> None:
        now = self.clock()
        if claims.get("iss") != self.issuer:
            raise SignInFailed(f"wrong issuer in the ID token (expected {self.issuer})")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if self.settings.client_id not in audiences:
            raise SignInFailed("the ID token was issued for another application")
        if len(audiences) > 1 and claims.get("azp") not in (None, self.settings.client_id):
            raise SignInFailed("the ID token was issued for another application")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or exp + LEEWAY_S < now:
            raise SignInFailed("the ID token has expired; sign in again")
        if isinstance(iat, int | float) and iat - LEEWAY_S > now:
            raise SignInFailed("the ID token was issued in the future; check the clocks")
        if nonce is not None and claims.get("nonce") != nonce:
            raise SignInFailed("the ID token does not belong to this sign-in (nonce mismatch)")

    def identity(self, *claim_sets: Mapping[str, Any]) -> Identity:
        """The identity from claims (later sets fill what earlier ones lack)."""
        merged: dict[str, Any] = {}
        for claims in reversed(claim_sets):
            merged.update({k: v for k, v in claims.items() if v is not None})
        s = self.settings
        subject = merged.get(s.subject_claim)
        if not isinstance(subject, str | int) or not str(subject):
            raise SignInFailed(f"the provider sent no {s.subject_claim!r} claim")
        email = merged.get(s.email_claim)
        email = str(email) if isinstance(email, str) and email else None
        name = merged.get(s.name_claim) or merged.get("preferred_username") or email or subject
        groups: tuple[str, ...] | None = None
        if s.groups_claim:
            raw = merged.get(s.groups_claim)
            if isinstance(raw, str):
                groups = (raw,)
            elif isinstance(raw, list):
                groups = tuple(str(g) for g in raw if isinstance(g, str | int))
        else:
            groups = ()
        return Identity(str(subject), str(name)[:200], email, groups)


def _has_key(keys: Mapping[str, Any], kid: object) -> bool:
    entries = keys.get("keys") or []
    if kid is None:
        return len(entries) == 1
    return any(isinstance(k, dict) and k.get("kid") == kid for k in entries)


def _decode(id_token: str, keys: Mapping[str, Any]) -> dict[str, Any]:
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    try:
        key_set = KeySet.import_key_set(dict(keys))  # type: ignore[arg-type]
        token = jwt.decode(id_token, key_set, algorithms=ALGORITHMS)
    except (JoseError, ValueError) as exc:
        raise SignInFailed(
            f"the ID token's signature does not verify ({type(exc).__name__})"
        ) from None
    return dict(token.claims)
