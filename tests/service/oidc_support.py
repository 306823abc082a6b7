"""A real OpenID provider on loopback for the sign-in tests, and the sign-in flow over HTTP.

``oidc-provider-mock`` (PyPI) serves discovery, JWKS, authorize (a form with a ``sub``
field and an "Authorize" button), token, userinfo, end-session, ``PUT /users/{sub}`` (the
user's claims, e.g. groups) and ``POST /users/{sub}/revoke-tokens``. It runs as its own
process, as a provider would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

CLIENT_ID = "inhouse-test"
CLIENT_SECRET = "inhouse-test-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Provider:
    """``python -m oidc_provider_mock`` on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "NO_COLOR": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "oidc_provider_mock", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/.well-known/openid-configuration").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("oidc-provider-mock did not start")
            time.sleep(0.1)

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        resp = httpx.put(f"{self.url}/users/{sub}", json=claims)
        assert resp.status_code == 204, resp.text

    def revoke_tokens(self, sub: str) -> None:
        resp = httpx.post(f"{self.url}/users/{sub}/revoke-tokens")
        assert resp.status_code == 204, resp.text

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def oidc_settings(provider: Provider, **extra: Any) -> dict[str, Any]:
    return {
        "issuer": provider.url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "label": "Test IdP",
        **extra,
    }


@dataclass
class Session:
    """A signed-in user as a browser would hold it."""

    client: httpx.Client  # its cookie jar holds inhouse_session
    token: str
    csrf: str
    me: dict[str, Any]

    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}


def begin(client: httpx.Client, service_url: str) -> str:
    """GET /auth/login: the provider's authorize URL (the login cookie lands in the jar)."""
    resp = client.get(f"{service_url}/auth/login")
    assert resp.status_code == 302, resp.text
    return resp.headers["location"]


def authorize(client: httpx.Client, authorize_url: str, sub: str) -> str:
    """At the provider: submit the form as ``sub``; returns our callback URL with the code."""
    page = client.get(authorize_url)
    assert page.status_code == 200 and 'name="sub"' in page.text, page.text[:500]
    resp = client.post(authorize_url, data={"sub": sub})
    assert resp.status_code == 302, resp.text[:500]
    return resp.headers["location"]


def sign_in(service_url: str, sub: str, client: httpx.Client | None = None) -> Session:
    """The whole flow over HTTP, as Chromium does it (without following redirects)."""
    client = client or httpx.Client(timeout=60)
    callback = authorize(client, begin(client, service_url), sub)
    resp = client.get(callback)
    assert resp.status_code == 303, resp.text[:500]
    token = resp.cookies["inhouse_session"]
    me = client.get(f"{service_url}/v1/me")
    assert me.status_code == 200, me.text
    return Session(client, token, me.json()["csrf_token"], me.json())
