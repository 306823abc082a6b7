"""Zero egress with company sign-in: the provider is contacted at sign-in, not before, and
nothing is contacted when no provider is configured."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx

from service.api.main import create_app
from service.settings import ServiceSettings
from tests.service.api_support import LiveService


class Listener:
    """A loopback TCP port that counts connections (the would-be provider)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.connected = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self.connected.set()
            conn.close()  # not a provider: the sign-in fails, which is fine here


def test_the_provider_is_contacted_only_at_sign_in(tmp_path: Path) -> None:
    idp = Listener()
    settings = ServiceSettings(
        data_dir=tmp_path,
        auth="keys,oidc",
        oidc={"issuer": idp.url, "client_id": "inhouse"},
        demo_model={"use": "never"},
    )
    with LiveService(create_app(settings)) as live, httpx.Client(base_url=live.url) as client:
        for path in ("/healthz", "/", "/auth/providers", "/v1/me", "/v1/collections"):
            client.get(path)
        assert idp.connections == 0  # start-up, the page and refused calls: no one contacted
        resp = client.get("/auth/login")
        assert idp.connected.wait(10) and idp.connections >= 1
        assert resp.status_code == 401 and "could not be reached" in resp.text
    idp.sock.close()


def test_without_a_provider_the_sign_in_routes_contact_no_one(tmp_path: Path) -> None:
    settings = ServiceSettings(data_dir=tmp_path, auth="keys", demo_model={"use": "never"})
    with LiveService(create_app(settings)) as live, httpx.Client(base_url=live.url) as client:
        assert client.get("/auth/providers").json() == {"keys": True, "providers": []}
        assert client.get("/auth/login").status_code == 404
