"""The web chat in a real Chromium against the real service (uvicorn on loopback, API keys,
Chroma index, Ollama test server behind it). Screenshots of the main states go to
test-output/web/. Every test also checks that the page made no request outside the
service's origin, raised no CSP violation or script error, and opened no dialog."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from tests.service.ollama_server import OllamaTestServer, Reply
from tests.web.chat_support import Chat, model_unreachable
from tests.web.conftest import HANDBOOK_PAGES, Corpus, Service

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fresh_model")]

REASONING = "HIDDEN-THOUGHT-5521: the user asks about vacation; source 1 has it."
ANSWER = (
    "New employees get **25 days** of paid vacation per year [1]. Requests go to the team"
    " lead two weeks ahead [1].\n\n- Remote work: up to three days a week [2]\n"
    "- Office hours: 8 am to 7 pm [3]"
)
UNLABELLED = """() => [...document.querySelectorAll('button, select, textarea, input')]
    .filter((e) => e.getClientRects().length > 0)
    .filter((e) => !(e.getAttribute('aria-label') || e.textContent.trim() || e.title
                     || (e.labels && e.labels.length && e.labels[0].textContent.trim())))
    .map((e) => e.outerHTML.slice(0, 120))"""
DROP = """([target, name, b64, type]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], name, { type }));
    const node = document.querySelector(target);
    for (const kind of ['dragenter', 'dragover', 'drop']) {
        node.dispatchEvent(new DragEvent(kind, { dataTransfer: data, bubbles: true,
                                                 cancelable: true }));
    }
}"""
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_sign_in_then_answer_streams_with_sources_and_no_reasoning(
    chat: Chat, corpus: Corpus, ollama: OllamaTestServer
) -> None:
    ollama.script.push(Reply.answer(ANSWER, REASONING, chunk_delay_s=0.05))
    chat.open()
    chat.shot("01-sign-in")
    chat.page.fill("#signin-key", "ih_000000000000_not-a-real-key-0000000000000000000000000")
    chat.page.click("#signin-submit")
    chat.page.wait_for_selector("#signin-error:not([hidden])")
    assert "not accepted" in chat.page.inner_text("#signin-error")
    chat.sign_in(corpus.keys["employee"])
    assert chat.page.locator("#collection-select option").all_inner_texts() == ["hr"]
    assert chat.page.evaluate("sessionStorage.getItem('inhouse.key')") == corpus.keys["employee"]
    assert corpus.keys["employee"] not in " ".join(chat.requests)  # never in a URL
    chat.shot("02-welcome")

    turn = chat.ask("How many vacation days do new employees get?")
    # sources arrive before the answer has finished streaming
    turn.locator(".chips .chip").first.wait_for()
    assert chat.page.locator("#stop").is_visible()
    turn.locator(".answer.streaming").wait_for()
    chat.shot("03-streaming")
    chat.finished(turn)

    answer = turn.locator(".answer")
    assert "25 days" in answer.inner_text()
    assert answer.locator("strong").inner_text() == "25 days"
    assert answer.locator("li").count() == 2
    assert answer.locator(".cite").count() == 4
    assert turn.locator(".chip").count() >= 2  # the handbook's three pages are one passage
    assert chat.page.locator("#source-list .source-item").count() == turn.locator(".chip").count()
    # a key without reasoning:read gets no panel and never the reasoning text
    assert chat.page.locator(".reasoning").count() == 0
    assert "HIDDEN-THOUGHT" not in chat.page.content()
    assert chat.page.locator("#send").is_visible() and not chat.page.locator("#stop").is_visible()
    assert chat.page.evaluate(UNLABELLED) == []
    chat.shot("04-answer")

    # the conversation is listed and survives a reload (the key stays for this tab)
    assert chat.page.locator(".conv-title").first.inner_text().startswith("How many vacation")
    chat.page.reload()
    chat.page.wait_for_selector("#app-view:not([hidden])")
    chat.page.click(".conv-open >> nth=0")
    assert "25 days" in chat.page.locator(".turn .answer").first.inner_text()


def page_of(meta: str) -> int:
    found = re.search(r"p\. (\d+)", meta)
    assert found, meta
    return int(found.group(1))


def test_citation_click_shows_passage_and_opens_the_pdf_at_its_page(
    chat: Chat, corpus: Corpus, ollama: OllamaTestServer
) -> None:
    ollama.script.push(Reply.answer(ANSWER, REASONING))
    chat.open().sign_in(corpus.keys["employee"])
    turn = chat.finished(chat.ask("Can I work from home?"))

    labels = {
        n: turn.locator(f'.answer .cite[data-n="{n}"]').first.get_attribute("aria-label")
        for n in (1, 2)
    }
    (n,) = [n for n, label in labels.items() if label.startswith(f"Source {n}: Employee Handbook")]
    turn.locator(f'.answer .cite[data-n="{n}"]').first.click()
    passage = chat.page.locator("#passage")
    passage.wait_for()
    title = chat.page.inner_text("#passage-title")
    source_text = chat.page.inner_text("#passage-text")
    meta = chat.page.inner_text("#passage-meta")
    page_no = page_of(meta)
    assert title == "Employee Handbook"
    # the handbook's pages as one passage, shown whole, from its first page on
    assert source_text.startswith(HANDBOOK_PAGES[page_no - 1])
    assert HANDBOOK_PAGES[1] in source_text
    assert chat.page.inner_text("#passage-number") == str(n)
    assert "hr/handbook.pdf" in meta
    chat.shot("05-passage")

    # a source chip selects its passage too
    other = 3 - n
    turn.locator(".chip").nth(other - 1).click()
    assert chat.page.inner_text("#passage-number") == str(other)
    turn.locator(".chip").nth(n - 1).click()
    assert chat.page.inner_text("#passage-number") == str(n)
    page_no = page_of(chat.page.inner_text("#passage-meta"))

    with chat.page.context.expect_page() as opened:
        chat.page.click("#passage-open")
    pdf = opened.value
    pdf.wait_for_url(re.compile(r"^blob:"), timeout=15_000)
    assert pdf.url.startswith(f"blob:{chat.url}/")
    assert pdf.url.endswith(f"#page={page_no}")
    pdf.close()
    downloads = [u for u in chat.requests if "/file" in u]
    assert downloads == [f"{chat.url}/v1/documents/{corpus.handbook_id}/file"]


def test_follow_up_sends_the_earlier_turn_and_keyboard_works(
    chat: Chat, corpus: Corpus, ollama: OllamaTestServer
) -> None:
    ollama.script.push(
        Reply.answer(ANSWER, REASONING),
        Reply.answer("Requests go to the team lead at least two weeks ahead [1].", "ok"),
    )
    chat.open().sign_in(corpus.keys["employee"])
    chat.finished(chat.ask("How many vacation days do new employees get?"))

    # Shift+Enter is a new line, Enter sends
    chat.page.click("#question")
    chat.page.keyboard.type("And who approves them?")
    chat.page.keyboard.press("Shift+Enter")
    chat.page.keyboard.type("Please be brief.")
    assert chat.page.input_value("#question") == "And who approves them?\nPlease be brief."
    assert chat.page.locator(".turn").count() == 1
    chat.page.keyboard.press("Enter")
    second = chat.finished(chat.page.locator(".turn").nth(1))
    assert "team lead" in second.locator(".answer").inner_text()
    assert second.locator(".chip").count() > 0

    sent = ollama.chat_requests()[-1].body["messages"]
    roles = [m["role"] for m in sent]
    assert roles[-3:] == ["user", "assistant", "user"]
    assert "25 days" in sent[-2]["content"] and "HIDDEN-THOUGHT" not in str(sent)
    assert "Please be brief." in sent[-1]["content"]
    chat.shot("06-follow-up")

    chat.page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=chat.url)
    second.get_by_role("button", name="Copy answer").click()
    assert chat.page.evaluate("() => navigator.clipboard.readText()") == (
        "Requests go to the team lead at least two weeks ahead [1]."
    )
    assert "Copied" in second.locator(".msg-actions").inner_text()


def test_xss_payloads_in_documents_and_answers_stay_inert(
    chat: Chat, corpus: Corpus, ollama: OllamaTestServer
) -> None:
    hostile = (
        'The assembly point is the north car park [1]. <img src=x onerror="window.__pwned='
        "'answer'\"> [runbook](javascript:window.__pwned='answer-link') "
        "<script>window.__pwned='answer-script'</script> [safe](https://intranet.example/x)"
    )
    ollama.script.push(Reply.answer(hostile, REASONING))
    chat.open().sign_in(corpus.keys["employee"])
    turn = chat.finished(chat.ask("Where is the fire assembly point during a drill?"))

    answer = turn.locator(".answer")
    assert "<img src=x onerror=" in answer.inner_text()
    assert "<script>" in answer.inner_text()
    mark = turn.locator(".chip", has_text="Drill notes")
    assert mark.count() == 1
    mark.click()
    assert "<script>window.__pwned = 'script'</script>" in chat.page.inner_text("#passage-text")
    assert chat.page.inner_text("#passage-title").startswith("Drill notes <b onmouseover=")
    chat.shot("07-xss-inert")
    # the one link kept is the https one; javascript: links became text
    links = chat.page.eval_on_selector_all(".answer a", "els => els.map(a => a.href)")
    assert links == ["https://intranet.example/x"]
    hostile_nodes = ("script", "img", "iframe", "[onerror]", "[onmouseover]", "[href^='java']")
    for target in ("#thread", "#sources-panel"):
        for bad in hostile_nodes:
            assert chat.page.locator(f"{target} {bad}").count() == 0, (target, bad)
    chat.page.hover("#passage-title")
    chat.page.locator(".answer").first.click()
    assert chat.page.evaluate("typeof window.__pwned") == "undefined"
    # Trusted Types (CSP) refuse raw HTML sinks even if a bug tried one
    refused = chat.page.evaluate(
        "() => { try { document.body.insertAdjacentHTML('beforeend', '<b>x</b>'); return false }"
        " catch (e) { return e instanceof TypeError } }"
    )
    assert refused is True
    chat.page.wait_for_function("() => window.__csp.length > 0")
    assert chat.page.evaluate("window.__csp.splice(0)") == [
        "require-trusted-types-for trusted-types-sink"
    ]


def test_reasoning_panel_only_for_keys_that_may_read_it(
    chat: Chat, corpus: Corpus, ollama: OllamaTestServer
) -> None:
    ollama.script.push(Reply.answer(ANSWER, REASONING, chunk_delay_s=0.02))
    chat.open().sign_in(corpus.keys["auditor"])
    turn = chat.finished(chat.ask("How many vacation days do new employees get?"))
    panel = turn.locator("details.reasoning")
    assert panel.count() == 1
    assert panel.get_attribute("open") is None  # collapsed
    assert "HIDDEN-THOUGHT" not in turn.locator(".answer").inner_text()
    panel.locator("summary").click()
    assert REASONING in panel.locator(".reasoning-text").inner_text()
    chat.shot("08-reasoning-auditor")
    # stored conversations keep no reasoning; reopening fetches it from the reasoning log
    stored = chat.page.evaluate("JSON.stringify(localStorage)")
    assert "HIDDEN-THOUGHT" not in stored and "25 days" in stored
    chat.page.reload()
    chat.page.wait_for_selector("#app-view:not([hidden])")
    chat.page.click(".conv-open >> nth=0")
    again = chat.page.locator(".turn details.reasoning")
    again.locator("summary").click()
    chat.page.wait_for_function(
        "() => document.querySelector('.turn .reasoning-text')"
        ".textContent.includes('HIDDEN-THOUGHT')"
    )


def test_stop_cancels_the_model_request(
    chat: Chat, corpus: Corpus, ollama: OllamaTestServer
) -> None:
    words = " ".join(f"word{i}" for i in range(400))
    ollama.script.push(Reply.answer(f"Partial answer [1]. {words}", "thinking", chunk_delay_s=0.1))
    chat.open().sign_in(corpus.keys["employee"])
    turn = chat.ask("Tell me everything about vacation.")
    chat.page.wait_for_function(
        "(el) => el.querySelector('.answer').textContent.includes('word3')",
        arg=turn.element_handle(),
    )
    chat.page.click("#stop")
    assert ollama.wait_for_disconnect(timeout=10), "the model request was not cancelled"
    chat.finished(turn)
    assert turn.locator(".stopped").inner_text() == "Stopped."
    assert "word399" not in turn.locator(".answer").inner_text()
    assert chat.page.locator("#send").is_visible()
    chat.shot("09-stopped")


def make_docx(path: Path, text: str) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Parking Policy", level=1)
    document.add_paragraph(text)
    document.save(str(path))


def test_upload_indexes_a_docx_and_reports_failures(
    chat: Chat, corpus: Corpus, ollama: OllamaTestServer, tmp_path: Path
) -> None:
    docx_path = tmp_path / "parking policy.docx"
    make_docx(docx_path, "Staff park in garage level minus two; the badge opens the gate.")
    broken = tmp_path / "broken.docx"
    broken.write_bytes(docx_path.read_bytes()[:600])  # a truncated download
    chat.open().sign_in(corpus.keys["editor"])
    # dragging files over the chat opens the dialog; dropping on its zone uploads them
    chat.page.evaluate(DROP, ["#thread", "nothing.txt", "", "text/plain"])
    chat.page.wait_for_selector("#upload-dialog[open]")
    assert chat.page.locator(".upload-item").count() == 0
    assert chat.page.inner_text("#upload-collection") == "hr"
    payload = base64.b64encode(docx_path.read_bytes()).decode()
    chat.page.evaluate(DROP, ["#dropzone", docx_path.name, payload, DOCX_TYPE])
    chat.page.set_input_files("#upload-input", str(broken))
    items = chat.page.locator(".upload-item")
    items.nth(0).locator(".upload-name").wait_for()
    chat.page.wait_for_function(
        "() => [...document.querySelectorAll('.upload-item')].every("
        "li => ['done', 'failed'].includes(li.dataset.state))",
        timeout=240_000,
    )
    assert items.nth(0).get_attribute("data-state") == "done"
    assert items.nth(0).locator(".upload-state").inner_text().startswith("Indexed")
    assert items.nth(1).get_attribute("data-state") == "failed"
    assert "Failed" in items.nth(1).locator(".upload-state").inner_text()
    assert "1 indexed" in chat.page.inner_text("#upload-summary")
    chat.shot("10-upload")
    stored = corpus.data_dir / "uploads" / "hr" / "parking policy.docx"
    assert stored.read_bytes() == docx_path.read_bytes()
    chat.page.click("#upload-dialog .dialog-foot button")

    ollama.script.push(Reply.answer("Park on level minus two [1].", "ok"))
    turn = chat.finished(chat.ask("Where do staff park in the garage?"))
    assert (
        turn.locator(".chip", has_text="Parking Policy").count()
        + turn.locator(".chip", has_text="parking policy").count()
        >= 1
    )


def test_sign_out_and_in_as_someone_else(
    chat: Chat, corpus: Corpus, ollama: OllamaTestServer, tmp_path: Path
) -> None:
    ollama.script.push(Reply.answer(ANSWER, REASONING))
    chat.open().sign_in(corpus.keys["employee"])
    assert chat.page.locator("#upload-open").is_hidden()  # no ingest scope
    chat.finished(chat.ask("Who keeps the visitor log?"))
    assert "visitor log" in chat.page.inner_text("#conversation-list")
    chat.page.get_by_role("button", name="Sign out").click()
    chat.page.wait_for_selector("#signin-view:not([hidden])")
    assert chat.page.evaluate("sessionStorage.getItem('inhouse.key')") is None
    chat.sign_in(corpus.keys["editor"])
    assert chat.page.inner_text("#user-name") == "Editor"
    # each key has its own conversation list
    assert "visitor log" not in chat.page.inner_text("#conversation-list")
    note = tmp_path / "visitors.md"
    note.write_text("# Visitors\n\nVisitors wear a badge at all times.\n")
    chat.page.click("#upload-open")
    chat.page.set_input_files("#upload-input", str(note))
    chat.page.wait_for_selector(".upload-item[data-state='done']", timeout=120_000)
    assert chat.page.locator(".upload-item").count() == 1  # one handler, one upload


def test_model_down_shows_a_labelled_extract(chat: Chat, corpus: Corpus, service: Service) -> None:
    with model_unreachable(service):
        chat.open().sign_in(corpus.keys["employee"])
        turn = chat.finished(chat.ask("How many vacation days do new employees get?"))
    notice = turn.locator(".model-notice")
    assert notice.get_attribute("data-code") == "model_unavailable"
    assert "unreachable" in notice.inner_text() and "quoted" in notice.inner_text()
    label = turn.locator(".extract-label")
    assert label.inner_text() == "Quoted from your documents, not written by a model"
    answer = turn.locator(".answer")
    assert "extract" in (answer.get_attribute("class") or "")
    assert "“New employees receive 25 days of paid vacation per year.”" in answer.inner_text()
    assert answer.locator("button.cite").count() >= 1  # each quote keeps its citation
    assert turn.locator(".passage-cards").count() == 0  # an answer, not a list of passages
    assert turn.locator("mark.unsupported").count() == 0
    chat.shot("11-model-down-extract")


def test_unsupported_figures_are_marked_and_explained(
    chat: Chat, corpus: Corpus, ollama: OllamaTestServer
) -> None:
    answer = (
        "New employees get **25 days** of paid vacation [1], or 30 days after 5 years [1]."
        " Requests go to the team lead [7]."
    )
    ollama.script.push(Reply.answer(answer, REASONING))
    chat.open().sign_in(corpus.keys["employee"])
    turn = chat.finished(chat.ask("How many vacation days do new employees get?"))

    marks = turn.locator("mark.unsupported")
    assert [marks.nth(i).inner_text() for i in range(marks.count())] == ["30", "5"]
    assert turn.locator(".answer strong").inner_text() == "25 days"  # supported: unmarked
    warning = turn.locator(".grounding-warning")
    assert warning.get_attribute("role") == "note"
    text = warning.inner_text()
    assert "2 figures in this answer were not found in the cited sources" in text
    assert "The model cited [7], which points to no source (removed)" in text
    assert turn.locator(".extract-label").count() == 0
    # the sentence that lost its [7] is cited by the service: dashed, labelled, explained
    inferred = turn.locator(".answer .cite-inferred")
    assert inferred.count() == 1 and "[7]" not in turn.locator(".answer").inner_text()
    assert "not cited by the model" in (inferred.first.get_attribute("aria-label") or "")
    assert turn.locator(".answer .cite:not(.cite-inferred)").count() == 2
    assert "added by Inhouse" in turn.locator(".attributed-note").inner_text()
    # the explanation: on keyboard focus (CSS tooltip) and for screen readers
    marks.first.focus()
    tip = chat.page.evaluate(
        "(el) => getComputedStyle(el, '::after').content", marks.first.element_handle()
    )
    assert "not found in the sources this answer cites" in tip
    described = marks.first.get_attribute("aria-describedby")
    assert "not found" in chat.page.eval_on_selector(f"#{described}", "(e) => e.textContent")
    chat.shot("20-unsupported-figure-focused")
    marks.first.blur()
    marks.nth(1).hover()
    chat.shot("21-unsupported-figure-hover")


def test_no_documents_yet(chat: Chat, corpus: Corpus) -> None:
    chat.open().sign_in(corpus.keys["newcomer"])
    empty = chat.page.locator("#empty-collection")
    empty.wait_for()
    assert "No documents yet" in empty.inner_text()
    assert "administrator" in empty.inner_text()
    assert chat.page.input_value("#collection-select") == "legal"
    chat.shot("12-no-documents")
    turn = chat.finished(chat.ask("Anything here?"))
    assert turn.locator(".error-card").get_attribute("data-code") == "no_documents"


def test_rate_limited_and_network_errors_are_explained(chat: Chat, corpus: Corpus) -> None:
    chat.open().sign_in(corpus.keys["employee"])
    body = '{"error": {"code": "rate_limited", "message": "slow down"}}'
    chat.page.route(
        "**/v1/query",
        lambda route: route.fulfill(
            status=429, body=body, headers={"Retry-After": "17", "Content-Type": "application/json"}
        ),
    )
    turn = chat.finished(chat.ask("How many vacation days?"))
    assert "Try again in 17 s" in turn.locator(".error-card").inner_text()
    chat.page.unroute("**/v1/query")
    chat.page.route("**/v1/query", lambda route: route.abort("connectionrefused"))
    turn = chat.finished(chat.ask("And now?"))
    assert turn.locator(".error-card").get_attribute("data-code") == "network_error"
    assert chat.page.locator("#banner").is_visible()
    chat.shot("13-network-error")
    chat.page.unroute("**/v1/query")


def test_revoked_key_ends_the_session(chat: Chat, corpus: Corpus) -> None:
    from service.auth.keys import KeyStore, key_id_of

    chat.open().sign_in(corpus.keys["leaver"])
    store = KeyStore(corpus.data_dir)
    try:
        store.revoke(key_id_of(corpus.keys["leaver"]))
    finally:
        store.close()
    chat.page.fill("#question", "Still there?")
    chat.page.press("#question", "Enter")
    chat.page.wait_for_selector("#signin-view:not([hidden])")
    assert "expired" in chat.page.inner_text("#signin-notice")
    assert chat.page.evaluate("sessionStorage.getItem('inhouse.key')") is None
    chat.shot("14-session-expired")


def test_phone_width_and_dark_theme(browser: Any, service: Service, corpus: Corpus,
                                    ollama: OllamaTestServer, shots: Path) -> None:  # fmt: skip
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True, has_touch=True
    )
    try:
        chat = Chat(context.new_page(), service, shots)
        ollama.script.push(Reply.answer(ANSWER, REASONING))
        chat.open()
        chat.shot("15-phone-sign-in")
        chat.sign_in(corpus.keys["employee"])
        turn = chat.finished(chat.ask("How many vacation days do new employees get?"))
        assert chat.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert chat.page.locator("#sidebar-open").is_visible()
        bg = chat.page.evaluate("getComputedStyle(document.querySelector('.main')).backgroundColor")
        assert bg == "rgb(23, 26, 32)"  # the dark surface
        chat.shot("16-phone-dark-answer")
        turn.locator(".answer .cite").first.click()
        chat.page.locator("#passage").wait_for()
        chat.shot("17-phone-dark-passage")
        chat.page.click("#sources-close")
        chat.page.click("#sidebar-open")
        chat.page.locator(".conv-open").first.wait_for()
        chat.page.wait_for_timeout(400)  # the drawer slides in
        chat.shot("18-phone-dark-conversations")
        # keyboard focus is visible
        chat.page.keyboard.press("Tab")
        outline = chat.page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement);"
            " return s.outlineStyle !== 'none' || s.boxShadow !== 'none'; })()"
        )
        assert outline
        chat.assert_clean()
    finally:
        context.close()
