"""ID token checks, one refusal each, with tokens signed here (real RSA keys, real JWS).

The provider's discovery document and JWKS come through an httpx ``MockTransport`` (the
transport seam), so each token can break exactly one rule: wrong issuer, a key the provider
does not publish, a forged signature, expired, another login's nonce (a replay), another
audience. The end-to-end flow against a real provider is in test_oidc_signin.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from service.auth.oidc import OIDCProvider, SignInFailed
from service.auth.oidc_settings import ProviderSettings

ISSUER = "https://idp.example.com"
CLIENT = "inhouse"
NONCE = "nonce-of-this-login"


class FakeIdP:
    """Discovery + JWKS over MockTransport; counts JWKS reads."""

    def __init__(self, issuer: str = ISSUER) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        self.issuer = issuer
        self.jwks_reads = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{ISSUER}/authorize",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                },
            )
        if request.url.path == "/jwks":
            self.jwks_reads += 1
            return httpx.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        return httpx.Response(404)

    def provider(self, now: float | None = None) -> OIDCProvider:
        settings = ProviderSettings(issuer=ISSUER, client_id=CLIENT)
        return OIDCProvider(
            "default",
            settings,
            clock=(lambda: now) if now is not None else time.time,
            transport=httpx.MockTransport(self.handler),
        )


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": CLIENT, "sub": "alice", "iat": now, "exp": now + 300,
            "nonce": NONCE, "groups": ["finance"]}  # fmt: skip
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: RSAKey, kid: str = "k1") -> str:
    return jwt.encode({"alg": "RS256", "kid": kid}, payload, key)


def verify(idp: FakeIdP, token: str, nonce: str = NONCE, now: float | None = None) -> Any:
    return asyncio.run(idp.provider(now).verify_id_token(token, nonce))


@pytest.fixture(scope="module")
def idp() -> FakeIdP:
    return FakeIdP()


def test_a_valid_token_passes(idp: FakeIdP) -> None:
    out = verify(idp, sign(claims(), idp.key))
    assert (out["sub"], out["groups"]) == ("alice", ["finance"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"iss": "https://evil.example.com"}, "wrong issuer"),
        ({"aud": "another-app"}, "issued for another application"),
        ({"aud": [CLIENT, "other"], "azp": "other"}, "issued for another application"),
        ({"exp": int(time.time()) - 3600}, "has expired"),
        ({"exp": None}, "has expired"),
        ({"iat": int(time.time()) + 3600}, "issued in the future"),
        ({"nonce": "nonce-of-an-earlier-login"}, "nonce mismatch"),
        ({"nonce": None}, "nonce mismatch"),
    ],
)
def test_each_broken_rule_is_refused(idp: FakeIdP, change: dict[str, Any], message: str) -> None:
    with pytest.raises(SignInFailed, match=message) as caught:
        verify(idp, sign(claims(**change), idp.key))
    assert "alice" not in caught.value.message  # nothing from the token leaks


def test_unknown_signing_key_is_refused_after_one_jwks_reread() -> None:
    idp = FakeIdP()
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k9"})
    with pytest.raises(SignInFailed, match="key the provider does not publish"):
        verify(idp, sign(claims(), stranger, kid="k9"))
    assert idp.jwks_reads == 2  # the cached set, then one re-read for a rotation


def test_forged_signature_under_a_known_kid_is_refused(idp: FakeIdP) -> None:
    forger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(SignInFailed, match="signature does not verify"):
        verify(idp, sign(claims(), forger))


def test_unsigned_and_garbage_tokens_are_refused(idp: FakeIdP) -> None:
    header = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    body = "eyJzdWIiOiJhbGljZSJ9"
    for token in (f"{header}.{body}.", "not-a-token", ""):
        with pytest.raises(SignInFailed):
            verify(idp, token)


def test_expiry_follows_the_injected_clock(idp: FakeIdP) -> None:
    token = sign(claims(), idp.key)
    verify(idp, token, now=time.time() + 299)
    with pytest.raises(SignInFailed, match="has expired"):
        verify(idp, token, now=time.time() + 300 + 61)


def test_discovery_naming_another_issuer_is_refused() -> None:
    idp = FakeIdP(issuer="https://idp.evil.example")
    with pytest.raises(SignInFailed, match="wrong issuer"):
        verify(idp, sign(claims(), idp.key))
