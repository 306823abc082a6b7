"""The R1 prompt: no system turn, numbered sources with title and page, history without
reasoning, and which [n] marks an answer uses."""

from __future__ import annotations

import pytest

from ingest.index import META_PAGE_END, META_PAGE_START, META_SOURCE, META_TITLE, Hit
from service.llm.base import ChatMessage
from service.prompt import (
    INSTRUCTIONS,
    build_messages,
    cited_numbers,
    format_sources,
    source_heading,
    strip_reasoning,
)


def hit(
    text: str, title: str | None = "Handbook", start: int | None = 3, end: int | None = 3
) -> Hit:
    meta: dict[str, object] = {META_SOURCE: "hr/handbook.pdf"}
    if title:
        meta[META_TITLE] = title
    if start is not None:
        meta[META_PAGE_START] = start
    if end is not None:
        meta[META_PAGE_END] = end
    return Hit(id="doc:00001:abc", text=text, metadata=meta, score=0.8)


def test_source_headings_carry_title_and_page() -> None:
    assert source_heading(1, hit("x")) == "[1] Handbook, p. 3"
    assert source_heading(2, hit("x", start=4, end=6)) == "[2] Handbook, pp. 4-6"
    assert source_heading(3, hit("x", start=None, end=None)) == "[3] Handbook"
    assert source_heading(4, hit("x", title=None)) == "[4] hr/handbook.pdf, p. 3"


def test_sources_are_numbered_in_order_with_their_text() -> None:
    block = format_sources([hit("  First passage. "), hit("Second passage.", start=9, end=9)])

    assert block == "[1] Handbook, p. 3\nFirst passage.\n\n[2] Handbook, p. 9\nSecond passage."


def test_single_user_turn_with_instructions_sources_then_question() -> None:
    messages = build_messages("  How many days?  ", [hit("25 days.")])

    assert len(messages) == 1 and messages[0].role == "user"
    text = messages[0].content
    assert text.startswith(INSTRUCTIONS)
    assert text.index("[1] Handbook, p. 3\n25 days.") < text.index("Question: How many days?")
    assert text.endswith("Question: How many days?")
    for phrase in ("only the numbered sources", "[n]", "do not answer the question"):
        assert phrase in text.replace("[1]", "[n]", 1)


def test_history_goes_first_and_assistant_turns_lose_their_reasoning() -> None:
    history = [
        ChatMessage("user", "Vacation?"),
        ChatMessage("assistant", "<think>private musing</think>\n\n25 days [1]."),
        ChatMessage("user", "And remote work?"),
        ChatMessage("assistant", "pre-filled musing</think>Three days [2]."),
    ]

    messages = build_messages("Office hours?", [hit("8 to 7.")], history)

    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[1].content == "25 days [1]."
    assert messages[3].content == "Three days [2]."
    assert "musing" not in "".join(m.content for m in messages)
    assert "Sources:" not in messages[0].content  # only the last turn carries sources


def test_extra_instructions_land_in_the_user_turn() -> None:
    messages = build_messages("Q?", [hit("t")], extra_instructions="Answer in French.")

    assert "Additional instructions: Answer in French." in messages[-1].content


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain answer", "plain answer"),
        ("<think>a</think>b", "b"),
        ("<think>never closed", ""),
        ("x<think>mid</think>y", "xy"),
    ],
)
def test_strip_reasoning(text: str, expected: str) -> None:
    assert strip_reasoning(text) == expected


@pytest.mark.parametrize(
    ("answer", "count", "expected"),
    [
        ("A [1]. B [3].", 3, [1, 3]),
        ("A [2][1], again [2].", 3, [1, 2]),
        ("A [1, 3] and [2-3].", 4, [1, 2, 3]),
        ("Out of range [7] and [0].", 3, []),
        ("Years [1999-2024] and lists [a].", 5, []),
        ("No citations at all.", 3, []),
    ],
)
def test_cited_numbers(answer: str, count: int, expected: list[int]) -> None:
    assert cited_numbers(answer, count) == expected
