"""Company sign-in in a real Chromium: the service (INHOUSE_AUTH=keys,oidc, a policy file) and
a real OpenID provider (oidc-provider-mock) on loopback. Sign in at the provider, ask, see
only the collections the groups grant, open the admin page, sign out here and there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.oidc_support import Provider, oidc_settings
from tests.service.ollama_server import OllamaTestServer, Reply
from tests.web.conftest import Corpus, Service

pytestmark = pytest.mark.browser

POLICY = """\
groups:
  hr-team:
    collections: {hr: [read]}
  finance:
    collections: {finance: [read]}
  it:
    scopes: [admin]
"""
ANSWER = "New employees get **25 days** of paid vacation per year [1]."


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    idp = Provider()
    try:
        yield idp
    finally:
        idp.stop()


@pytest.fixture(scope="module")
def sso(corpus: Corpus, ollama: OllamaTestServer, provider: Provider) -> Iterator[Service]:
    from service.api.deps import get_retriever
    from service.api.main import create_app
    from service.settings import ServiceSettings
    from tests.service.api_support import LiveService, make_retriever

    policy = corpus.data_dir.parent / "policy.yaml"
    policy.write_text(POLICY)
    settings = ServiceSettings(
        data_dir=corpus.data_dir,
        ollama_host=ollama.url,
        auth="keys,oidc",
        oidc=oidc_settings(provider),
        policy=policy,
        demo_model={"use": "never"},
    )
    app = create_app(settings)
    retriever = make_retriever(corpus.data_dir)
    app.dependency_overrides[get_retriever] = lambda: retriever
    with LiveService(app) as live:
        yield Service(live.url, app, settings)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 860}, color_scheme="light")
    try:
        tab = context.new_page()
        tab.errors = []
        tab.on("pageerror", lambda e: tab.errors.append(str(e)))
        yield tab
    finally:
        context.close()


def sign_in(page: Any, sso: Service, sub: str) -> None:
    page.goto(sso.url + "/")
    button = page.locator("#sso-providers a", has_text="Sign in with Test IdP")
    button.wait_for()
    button.click()
    page.wait_for_selector('input[name="sub"]')  # the provider's own page
    page.fill('input[name="sub"]', sub)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_selector("#app-view:not([hidden])")
    page.wait_for_function("() => document.querySelector('#collection-select').value !== ''")


def options(page: Any) -> set[str]:
    values = page.locator("#collection-select option").evaluate_all("(os) => os.map(o => o.value)")
    return {v for v in values if v != "*"}


def session_cookies(page: Any) -> list[dict[str, Any]]:
    return [c for c in page.context.cookies() if c["name"] == "inhouse_session"]


def test_sign_in_ask_see_granted_collections_sign_out(
    page: Any, sso: Service, provider: Provider, ollama: OllamaTestServer, shots: Path
) -> None:
    provider.set_user("alice", {"name": "Alice Example", "groups": ["hr-team"]})
    page.goto(sso.url + "/")
    page.wait_for_selector("#sso-providers a")
    assert page.locator("#signin-form").is_visible()  # keys stay on (keys,oidc)
    page.screenshot(path=str(shots / "sso-01-sign-in.png"))
    sign_in(page, sso, "alice")
    assert page.inner_text("#user-name") == "Alice Example"
    assert options(page) == {"hr"}
    (cookie,) = session_cookies(page)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""  # invisible to scripts
    assert not page.locator("#admin-open").is_visible()

    ollama.reset()
    ollama.script.push(Reply.answer(ANSWER, "thinking"))
    page.fill("#question", "How many vacation days do new employees get?")
    page.press("#question", "Enter")
    turn = page.locator(".turn").first
    turn.wait_for()
    page.wait_for_function("(el) => !el.classList.contains('pending')", arg=turn.element_handle())
    assert "25 days" in turn.locator(".answer").inner_text()
    prompt = str([r.body for r in ollama.chat_requests()])
    assert "vacation" in prompt and "Salaries" not in prompt  # finance never searched
    page.screenshot(path=str(shots / "sso-02-answer.png"))

    page.click("#signout")
    page.wait_for_url(f"{provider.url}/oauth2/end_session**")  # RP-initiated logout
    assert session_cookies(page) == []
    page.goto(sso.url + "/")
    page.wait_for_selector("#signin-view:not([hidden])")
    resp = page.request.get(sso.url + "/v1/me")
    assert resp.status == 401
    assert page.errors == []


def test_groups_decide_and_admins_get_the_admin_page(
    page: Any, sso: Service, provider: Provider, shots: Path
) -> None:
    provider.set_user("bob", {"name": "Bob Finance", "groups": ["finance"]})
    sign_in(page, sso, "bob")
    assert options(page) == {"finance"}
    page.context.clear_cookies()

    provider.set_user("root", {"name": "Root Admin", "groups": ["it"]})
    sign_in(page, sso, "root")
    assert options(page) == {"hr", "finance"}
    page.click("#admin-open")
    dialog = page.locator("#admin-dialog")
    dialog.locator("#admin-collections table").wait_for()
    rows = dialog.locator("#admin-collections tbody tr").all_inner_texts()
    assert any(r.startswith("hr") for r in rows) and any(r.startswith("finance") for r in rows)
    dialog.locator("#admin-sessions table").wait_for()
    assert "Root Admin" in dialog.locator("#admin-sessions").inner_text()
    assert "admin API key" in dialog.locator("#admin-keys").inner_text()  # sessions mint no keys
    page.screenshot(path=str(shots / "sso-03-admin.png"))
    assert page.errors == []


def test_admin_key_creates_a_key_shown_once_and_revokes_it(
    page: Any, sso: Service, corpus: Corpus, shots: Path
) -> None:
    from service.auth.keys import KeyStore

    store = KeyStore(corpus.data_dir)
    try:
        admin_key = store.create("Browser admin", ["admin"], ["*"]).key
    finally:
        store.close()
    page.goto(sso.url + "/")
    page.fill("#signin-key", admin_key)
    page.click("#signin-submit")
    page.wait_for_selector("#app-view:not([hidden])")
    page.click("#admin-open")
    dialog = page.locator("#admin-dialog")
    dialog.locator("#admin-keys table").wait_for()
    page.fill("#admin-key-name", "Robot")
    page.fill("#admin-key-collections", "hr")
    page.click("#admin-key-create")
    secret = dialog.locator("#admin-key-secret code")
    secret.wait_for()
    new_key = secret.inner_text()
    assert new_key.startswith("ih_")
    me = page.request.get(sso.url + "/v1/me", headers={"Authorization": f"Bearer {new_key}"})
    assert me.status == 200 and me.json()["collections"] == ["hr"]
    row = dialog.locator("#admin-keys tbody tr", has_text="Robot")
    row.wait_for()
    assert new_key not in dialog.locator("#admin-keys").inner_text()  # listed without it
    page.screenshot(path=str(shots / "sso-04-keys.png"))
    row.get_by_role("button", name="Revoke").click()
    row.get_by_text("revoked").wait_for()
    me = page.request.get(sso.url + "/v1/me", headers={"Authorization": f"Bearer {new_key}"})
    assert me.status == 401
    assert page.errors == []
