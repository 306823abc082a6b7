"""What a new user tripped over, in a real Chromium against the real service: the chat with
sign-in switched off (INHOUSE_AUTH=disabled), the Reasoning panel on answers that had no
reasoning, and a question sent while the collection list was still loading."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.ollama_server import OllamaTestServer, Reply
from tests.web.chat_support import Chat, model_unreachable
from tests.web.conftest import Corpus, Service

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fresh_model")]

QUESTION = "How many vacation days do new employees get?"
ANSWER = "New employees get **25 days** of paid vacation per year [1]."
REASONING = "THOUGHT-7731: the handbook's first page has the number."


@pytest.fixture(scope="module")
def open_service(corpus: Corpus, ollama: OllamaTestServer) -> Iterator[Service]:
    """The same index served with INHOUSE_AUTH=disabled: everyone is the anonymous admin."""
    from service.api.deps import get_retriever
    from service.api.main import create_app
    from service.settings import ServiceSettings
    from tests.service.api_support import LiveService, make_retriever

    settings = ServiceSettings(
        data_dir=corpus.data_dir, ollama_host=ollama.url, auth="disabled",
        demo_model={"use": "never"},
    )  # fmt: skip
    app = create_app(settings)
    retriever = make_retriever(corpus.data_dir)
    app.dependency_overrides[get_retriever] = lambda: retriever
    with LiveService(app) as live:
        yield Service(live.url, app, settings)


def test_with_sign_in_off_the_chat_opens_without_a_key(
    browser: Any, open_service: Service, ollama: OllamaTestServer, shots: Path
) -> None:
    context = browser.new_context(viewport={"width": 1360, "height": 860}, color_scheme="light")
    try:
        chat = Chat(context.new_page(), open_service, shots)
        ollama.script.push(Reply.answer(ANSWER, REASONING))
        chat.page.goto(open_service.url + "/")
        chat.page.wait_for_selector("#app-view:not([hidden])", timeout=15_000)
        assert chat.page.locator("#signin-view").is_hidden()
        assert chat.page.locator("#signin-key").is_hidden()
        assert chat.page.locator("#signout").is_hidden()  # nobody signed in, nothing to end
        assert chat.page.inner_text("#user-role") == "Sign-in is off"
        chat.page.wait_for_function("() => document.querySelector('#collection-select').value")
        names = chat.page.locator("#collection-select option").all_inner_texts()
        assert {"hr", "finance"} <= set(names)
        chat.shot("30-sign-in-off")
        turn = chat.finished(chat.ask(QUESTION))
        assert "25 days" in turn.locator(".answer").inner_text()
        chat.assert_clean()
    finally:
        context.close()


def test_no_reasoning_panel_on_an_answer_without_reasoning(
    chat: Chat, corpus: Corpus, service: Service, ollama: OllamaTestServer
) -> None:
    chat.open().sign_in(corpus.keys["auditor"])  # a key that may read reasoning
    with model_unreachable(service):
        extract = chat.finished(chat.ask(QUESTION))
    assert extract.locator(".extract-label").count() == 1  # the model was unreachable
    assert extract.locator("details.reasoning").count() == 0
    chat.shot("32-extract-without-reasoning-panel")

    # a generated answer whose model did not reason: no panel either
    chat.page.click("#new-chat")
    ollama.script.push(Reply.answer(ANSWER, ""))
    plain = chat.finished(chat.ask(QUESTION))
    assert "25 days" in plain.locator(".answer").inner_text()
    assert plain.locator("details.reasoning").count() == 0
    # ... while one that did reason keeps it, closed until asked for
    chat.page.click("#new-chat")
    ollama.script.push(Reply.answer(ANSWER, REASONING))
    reasoned = chat.finished(chat.ask(QUESTION))
    assert reasoned.locator("details.reasoning").count() == 1

    # the stored conversations reopen the same way
    chat.page.reload()
    chat.page.wait_for_selector("#app-view:not([hidden])")
    titles = chat.page.locator(".conv-open")
    titles.nth(2).wait_for()  # the stored list is drawn after the page shows (count() waits not)
    assert titles.count() == 3
    panels = []
    for n in range(3):  # newest first: reasoned, plain, extract
        titles.nth(n).click()
        chat.page.locator(".turn").first.wait_for()
        panels.append(chat.page.locator(".turn details.reasoning").count())
    assert panels == [1, 0, 0]


def test_a_question_sent_while_collections_load_waits_and_is_asked(
    chat: Chat, corpus: Corpus, ollama: OllamaTestServer
) -> None:
    held: list[Any] = []  # /v1/collections, answered when the test says so
    chat.page.route("**/v1/collections", lambda route: held.append(route))
    ollama.script.push(Reply.answer(ANSWER, REASONING))
    chat.open()
    chat.page.fill("#signin-key", corpus.keys["employee"])
    with chat.page.expect_request("**/v1/collections"):
        chat.page.click("#signin-submit")
    chat.page.wait_for_selector("#app-view:not([hidden])")
    assert len(held) == 1 and chat.page.input_value("#collection-select") == ""

    chat.page.fill("#question", QUESTION)
    chat.page.press("#question", "Enter")
    # nothing is lost or asked yet: the question waits in the box and the page says why
    assert chat.page.input_value("#question") == QUESTION
    assert chat.page.locator(".turn").count() == 0
    wait = chat.page.locator("#composer-wait")
    wait.wait_for()
    assert "sent as soon as your collections have loaded" in wait.inner_text()
    chat.shot("31-question-waits-for-collections")

    held[0].continue_()
    turn = chat.page.locator(".turn").first
    turn.wait_for()
    chat.finished(turn)
    assert turn.locator(".bubble").inner_text() == QUESTION
    assert "25 days" in turn.locator(".answer").inner_text()
    assert chat.page.input_value("#collection-select") == "hr"
    assert chat.page.input_value("#question") == ""
    assert wait.is_hidden() and chat.page.locator("#composer-hint").is_visible()
    assert len(ollama.chat_requests()) == 1  # asked once
    assert [u for u in chat.requests if u.endswith("/v1/query")] == [f"{chat.url}/v1/query"]
