"""The chat page in a browser tab, for the browser tests: sign in, ask, wait, screenshot,
and check that the page stayed inside the service (no outside request, CSP violation,
script error or dialog)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.web.conftest import Service, free_port

WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


class Chat:
    """One browser tab on the chat, with what it requested and any alarms it raised."""

    def __init__(self, page: Any, service: Service, shots: Path) -> None:
        self.page = page
        self.url = service.url
        self.shots = shots
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.add_init_script(WATCH)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self) -> Chat:
        self.page.goto(self.url + "/")
        self.page.wait_for_selector("#signin-key")
        return self

    def sign_in(self, key: str) -> Chat:
        self.page.fill("#signin-key", key)
        self.page.click("#signin-submit")
        self.page.wait_for_selector("#app-view:not([hidden])")
        self.page.wait_for_function(
            "() => document.querySelector('#collection-select').value !== ''"
            " || document.querySelector('#empty-collection:not([hidden])')"
        )
        return self

    def ask(self, question: str) -> Any:
        """Type and send with Enter; the new turn's locator."""
        count = self.page.locator(".turn").count()
        self.page.fill("#question", question)
        self.page.press("#question", "Enter")
        turn = self.page.locator(".turn").nth(count)
        turn.wait_for()
        return turn

    def finished(self, turn: Any, timeout: float = 30_000) -> Any:
        self.page.wait_for_function(
            "(el) => !el.classList.contains('pending')", arg=turn.element_handle(), timeout=timeout
        )
        return turn

    def shot(self, name: str, full: bool = False) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=full)

    def assert_clean(self) -> None:
        origin = self.url + "/"
        outside = [u for u in self.requests if not (u.startswith(origin) or u.startswith("blob:"))]
        assert not outside, f"requests outside the service: {outside}"
        assert not self.dialogs, f"dialogs opened: {self.dialogs}"
        assert not self.errors, f"script errors: {self.errors}"
        if not self.page.is_closed():
            assert self.page.evaluate("window.__csp") == []


@contextmanager
def model_unreachable(service: Service) -> Iterator[None]:
    """Inside the block the service's model server is a port nobody listens on."""
    from service.api.deps import get_backend
    from service.llm.factory import build_backend

    host = f"http://127.0.0.1:{free_port()}"
    down = build_backend(service.settings.model_copy(update={"ollama_host": host}))
    service.app.dependency_overrides[get_backend] = lambda: down
    try:
        yield
    finally:
        del service.app.dependency_overrides[get_backend]
