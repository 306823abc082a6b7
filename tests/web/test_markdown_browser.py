"""The markdown renderer (web/js/markdown.js) in Chromium: input -> DOM, case by case.

The page is served by route interception (no service needed) under a Trusted Types CSP,
so the renderer can only build nodes, never parse HTML. Each case compares the rendered
fragment's serialisation with the expected HTML: lists (and nesting), emphasis, code,
tables, links, and hostile input (HTML shown as text, javascript: and data: links refused).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

WEB = Path(__file__).resolve().parents[2] / "web"
ORIGIN = "http://inhouse.test"
# as the service's own CSP: scripts from the origin only, no HTML sinks (Trusted Types)
CSP = "default-src 'self'; script-src 'self'; require-trusted-types-for 'script'"
OUT = 'target="_blank" rel="noopener noreferrer nofollow"'
RENDER = """async ([cases, sources]) => {
    const { renderMarkdown } = await import('/static/js/markdown.js');
    const citation = (n) => {
        const b = document.createElement('button');
        b.className = 'cite';
        b.textContent = String(n);
        return b;
    };
    return cases.map((text) => {
        const root = document.createElement('div');
        root.append(renderMarkdown(text, { citation, sourceCount: sources }));
        return root.innerHTML;
    });
}"""

LISTS = [
    ("- one\n- two", "<ul><li>one</li><li>two</li></ul>"),
    ("* one\n* two", "<ul><li>one</li><li>two</li></ul>"),
    ("1. one\n2. two", "<ol><li>one</li><li>two</li></ol>"),
    ("3. three\n4. four", '<ol start="3"><li>three</li><li>four</li></ol>'),
    ("Intro:\n- a\n- b", "<p>Intro:</p><ul><li>a</li><li>b</li></ul>"),
    ("- a\n  continued\n- b", "<ul><li>a\ncontinued</li><li>b</li></ul>"),
    ("- a\n\n- b", "<ul><li><p>a</p></li><li><p>b</p></li></ul>"),  # loose: paragraphs
    ("- **Bold** with `code`", "<ul><li><strong>Bold</strong> with <code>code</code></li></ul>"),
]
NESTING = [
    ("- a\n  - b\n  - c\n- d", "<ul><li>a<ul><li>b</li><li>c</li></ul></li><li>d</li></ul>"),
    ("1. a\n   - x\n   - y\n2. b", "<ol><li>a<ul><li>x</li><li>y</li></ul></li><li>b</li></ol>"),
    (
        "- a\n  - b\n    - c",
        "<ul><li>a<ul><li>b<ul><li>c</li></ul></li></ul></li></ul>",
    ),
    ("> quote\n> - item", "<blockquote><p>quote</p><ul><li>item</li></ul></blockquote>"),
]
EMPHASIS = [
    ("*em* and _em_", "<p><em>em</em> and <em>em</em></p>"),
    ("**strong** and __strong__", "<p><strong>strong</strong> and <strong>strong</strong></p>"),
    ("***both***", "<p><em><strong>both</strong></em></p>"),
    ("**bold *nested* bold**", "<p><strong>bold <em>nested</em> bold</strong></p>"),
    ("~~gone~~", "<p><del>gone</del></p>"),
    ("snake_case_name and window.__name", "<p>snake_case_name and window.__name</p>"),
    ("a * b * c", "<p>a * b * c</p>"),
    ("\\*not em\\*", "<p>*not em*</p>"),
    ("line  \nbreak", "<p>line  <br>break</p>"),
]
CODE = [
    ("`x < y`", "<p><code>x &lt; y</code></p>"),
    ("``a ` b``", "<p><code>a ` b</code></p>"),
    ("`**not bold**`", "<p><code>**not bold**</code></p>"),
    (
        "```python\nprint('<b>')\n**not bold**\n```",
        "<pre><code data-lang=\"python\">print('&lt;b&gt;')\n**not bold**</code></pre>",
    ),
    ("~~~\n- not a list\n~~~", "<pre><code>- not a list</code></pre>"),
]
TABLES = [
    (
        "| A | B |\n|:--|--:|\n| 1 | 2 |\n| 3 |",
        '<div class="table-wrap"><table><thead><tr><th>A</th><th class="align-right">B</th>'
        '</tr></thead><tbody><tr><td>1</td><td class="align-right">2</td></tr><tr><td>3</td>'
        '<td class="align-right"></td></tr></tbody></table></div>',
    ),
    (
        "| a | b |\n|:-:|---|\n| x \\| y | **z** |",
        '<div class="table-wrap"><table><thead><tr><th class="align-center">a</th><th>b</th>'
        '</tr></thead><tbody><tr><td class="align-center">x | y</td><td><strong>z</strong>'
        "</td></tr></tbody></table></div>",
    ),
    (
        "| h |\n|---|\n| <i>x</i> [l](javascript:y) |",
        '<div class="table-wrap"><table><thead><tr><th>h</th></tr></thead><tbody><tr>'
        "<td>&lt;i&gt;x&lt;/i&gt; l</td></tr></tbody></table></div>",
    ),
]
LINKS = [
    (
        '[ok](https://example.com "Title")',
        f'<p><a href="https://example.com/" {OUT} title="Title">ok</a></p>',
    ),
    ("[here](/v1/collections)", f'<p><a href="{ORIGIN}/v1/collections">here</a></p>'),
    (
        "<https://example.com>",
        f'<p><a href="https://example.com/" {OUT}>https://example.com</a></p>',
    ),
    (
        "see https://example.com/a.",
        f'<p>see <a href="https://example.com/a" {OUT}>https://example.com/a</a>.</p>',
    ),
    ("[mail](mailto:it@example.com)", f'<p><a href="mailto:it@example.com" {OUT}>mail</a></p>'),
    ("![logo](/x.png)", f'<p><a href="{ORIGIN}/x.png" class="image-link">logo</a></p>'),
    (
        "**[b](https://example.com)**",
        f'<p><strong><a href="https://example.com/" {OUT}>b</a></strong></p>',
    ),
    (
        "[1] and [2], [1, 3]",  # one source: [1] is a citation, the others stay text
        '<p><span class="cites"><button class="cite">1</button></span> and [2], [1, 3]</p>',
    ),
]
REFUSED = [
    ("[a](javascript:alert(1))", "<p>a</p>"),
    ("[b](JaVaScRiPt:alert(1))", "<p>b</p>"),
    ("[c]( javascript:alert(1))", "<p>c</p>"),
    ("[d](java\tscript:alert(1))", "<p>d</p>"),
    ("[e](data:text/html,x)", "<p>e</p>"),
    ("[f](vbscript:msgbox(1))", "<p>f</p>"),
    ("![g](javascript:alert(1))", "<p>g</p>"),
    ("<javascript:alert(1)>", "<p>&lt;javascript:alert(1)&gt;</p>"),
]
ESCAPED = [
    (
        "<b>hi</b> & <script>x()</script>",
        "<p>&lt;b&gt;hi&lt;/b&gt; &amp; &lt;script&gt;x()&lt;/script&gt;</p>",
    ),
    ('<img src=x onerror="alert(1)">', '<p>&lt;img src=x onerror="alert(1)"&gt;</p>'),
    ('<a href="javascript:x">h</a>', '<p>&lt;a href="javascript:x"&gt;h&lt;/a&gt;</p>'),
    ("- <svg onload=alert(1)>", "<ul><li>&lt;svg onload=alert(1)&gt;</li></ul>"),
    (
        "# Title <i>x</i>\n> <b>q</b>",
        "<h3>Title &lt;i&gt;x&lt;/i&gt;</h3><blockquote><p>&lt;b&gt;q&lt;/b&gt;</p></blockquote>",
    ),
]
CASES = {
    "lists": LISTS,
    "nesting": NESTING,
    "emphasis": EMPHASIS,
    "code": CODE,
    "tables": TABLES,
    "links": LINKS,
    "refused links": REFUSED,
    "escaped html": ESCAPED,
}


def serve(route: Any) -> None:
    path = route.request.url.removeprefix(ORIGIN)
    if path.startswith("/static/js/") and path.endswith(".js"):
        route.fulfill(path=str(WEB / "js" / path.removeprefix("/static/js/")),
                      content_type="text/javascript")  # fmt: skip
    else:
        route.fulfill(body="<!doctype html><title>markdown</title>", content_type="text/html",
                      headers={"Content-Security-Policy": CSP})  # fmt: skip


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.route(f"{ORIGIN}/**", serve)
        tab.goto(f"{ORIGIN}/")
        yield tab
    finally:
        context.close()


@pytest.mark.parametrize("kind", list(CASES))
def test_markdown_renders_to_the_expected_dom(page: Any, kind: str) -> None:
    cases = CASES[kind]
    rendered = page.evaluate(RENDER, [[text for text, _ in cases], 1])
    wrong = [(text, got, want) for (text, want), got in zip(cases, rendered, strict=True)
             if got != want]  # fmt: skip
    assert wrong == []


def test_hostile_input_builds_only_safe_elements(page: Any) -> None:
    samples = [text for cases in CASES.values() for text, _ in cases] + [
        "[x](javascript:alert(1))" * 3,
        "<iframe src=//evil>",
        "| <style>*{}</style> |\n|---|\n| <form> |",
    ]
    result = page.evaluate(
        """async (samples) => {
        const { renderMarkdown } = await import('/static/js/markdown.js');
        const root = document.createElement('div');
        for (const s of samples) root.append(renderMarkdown(s));
        const all = [...root.querySelectorAll('*')];
        return { tags: [...new Set(all.map((e) => e.tagName.toLowerCase()))],
                 attrs: [...new Set(all.flatMap((e) => [...e.attributes].map((a) => a.name)))],
                 hrefs: [...root.querySelectorAll('a')].map((a) => a.protocol) };
    }""",
        samples,
    )
    allowed = {"a", "p", "strong", "em", "del", "code", "pre", "ul", "ol", "li", "br", "hr", "h3",
               "h4", "blockquote", "div", "table", "thead", "tbody", "tr", "th", "td"}  # fmt: skip
    assert set(result["tags"]) <= allowed
    assert set(result["attrs"]) <= {"href", "target", "rel", "class", "title", "start", "data-lang"}
    assert set(result["hrefs"]) <= {"http:", "https:", "mailto:"}
