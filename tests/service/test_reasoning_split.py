"""ThinkSplitter: tags cut anywhere, pre-filled templates, several blocks, unclosed blocks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.llm.base import ModelDelta
from service.llm.reasoning import ThinkSplitter


def run(
    pieces: list[str], prefilled: bool | None = None
) -> tuple[str, str, bool, list[ModelDelta]]:
    splitter = ThinkSplitter(prefilled=prefilled)
    deltas: list[ModelDelta] = []
    for piece in pieces:
        deltas += splitter.feed(piece)
    deltas += splitter.finish()
    answer = "".join(d.text for d in deltas if d.kind == "answer")
    reasoning = "".join(d.text for d in deltas if d.kind == "reasoning")
    return answer, reasoning, splitter.unclosed, deltas


def chars(text: str) -> list[str]:
    return list(text)


@pytest.mark.parametrize("cut", [chars, lambda t: [t], lambda t: [t[:3], t[3:9], t[9:]]])
def test_plain_block_any_cut(cut: object) -> None:
    text = "<think>\nThe user asks X.\n</think>\n\nX is 42."
    answer, reasoning, unclosed, _ = run(cut(text))  # type: ignore[operator]
    assert (answer, reasoning, unclosed) == ("X is 42.", "The user asks X.\n", False)


def test_tag_split_at_every_position_never_leaks_partial_tag() -> None:
    text = "<think>why</think>Because."
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            answer, reasoning, _, deltas = run([text[:i], text[i:j], text[j:]])
            assert (answer, reasoning) == ("Because.", "why"), (i, j)
            assert not any("<" in d.text or ">" in d.text for d in deltas), (i, j)


def test_partial_tag_is_held_back_until_decided() -> None:
    splitter = ThinkSplitter(prefilled=False)
    assert splitter.feed("Answer <th") == [ModelDelta("answer", "Answer ")]
    assert splitter.feed("is") == [ModelDelta("answer", "<this")]
    assert splitter.feed(" </thi") == [ModelDelta("answer", " </thi")]  # no close tag outside
    assert splitter.feed("<thin") == []
    assert splitter.feed("k>deep") == [ModelDelta("reasoning", "deep")]
    assert splitter.feed("</") == []
    assert splitter.finish() == [ModelDelta("reasoning", "</")]
    assert splitter.unclosed


def test_missing_opening_tag_auto_holds_until_close_tag() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("Okay, the user wants") == []  # cannot know yet
    assert splitter.feed(" a date.</thi") == []
    assert splitter.feed("nk>\n\nMonday.") == [
        ModelDelta("reasoning", "Okay, the user wants a date."),
        ModelDelta("answer", "Monday."),
    ]
    assert splitter.finish() == []
    assert not splitter.unclosed


def test_missing_opening_tag_prefilled_streams_reasoning_at_once() -> None:
    splitter = ThinkSplitter(prefilled=True)
    assert splitter.feed("Okay") == [ModelDelta("reasoning", "Okay")]
    assert splitter.feed("</think>Done") == [ModelDelta("answer", "Done")]


def test_prefilled_tolerates_a_leading_open_tag() -> None:
    assert run(["  <th", "ink>r", "</think>a"], prefilled=True)[:3] == ("a", "r", False)
    assert run(["<thinking is fun</think>a"], prefilled=True)[:2] == ("a", "<thinking is fun")


def test_no_tags_is_all_answer() -> None:
    assert run(["  Just ", "an answer."])[:3] == ("Just an answer.", "", False)
    assert run(["Just an answer."], prefilled=False)[:3] == ("Just an answer.", "", False)


def test_no_tags_prefilled_is_unclosed_reasoning() -> None:
    assert run(["thinking forever"], prefilled=True)[:3] == ("", "thinking forever", True)


def test_empty_block_yields_no_reasoning() -> None:
    answer, reasoning, unclosed, deltas = run(["<think>\n\n</think>\n\n", "Hi."])
    assert (answer, reasoning, unclosed) == ("Hi.", "", False)
    assert [d.kind for d in deltas] == ["answer"]


def test_several_blocks() -> None:
    text = "<think>a</think> One. <think>b</think>\nTwo."
    assert run(chars(text))[:3] == ("One. Two.", "ab", False)


def test_text_before_first_open_tag_is_answer() -> None:
    assert run(["Sure. <think>r</think> Done."])[:2] == ("Sure. Done.", "r")


def test_unclosed_block_reports_and_keeps_reasoning() -> None:
    answer, reasoning, unclosed, _ = run(["<think>Let me think", " more"])
    assert (answer, reasoning, unclosed) == ("", "Let me think more", True)


def test_close_tag_inside_answer_is_text_once_decided() -> None:
    assert run(["<think>r</think>a</think>b"])[:2] == ("a</think>b", "r")


def test_open_tag_inside_reasoning_is_text() -> None:
    assert run(["<think>x<think>y</think>z"])[:2] == ("z", "x<think>y")


def test_counters_and_feed_after_finish() -> None:
    splitter = ThinkSplitter()
    splitter.feed("<think>abc</think>de")
    splitter.finish()
    assert (splitter.reasoning_chars, splitter.answer_chars) == (3, 2)
    with pytest.raises(RuntimeError):
        splitter.feed("more")


def test_unicode_and_whitespace_only_answer() -> None:
    assert run(["<think>ü", "ñ</think>", "  \n "])[:3] == ("", "üñ", False)
    assert run(chars("<think>日本</think>語"))[:2] == ("語", "日本")


FRAGMENTS = st.sampled_from(
    ["<think>", "</think>", "<", "</", "<th", "<think", "think>", "</thin", "k>", ">", "/",
     "a", "bc", " ", "\n", "  ", "ü", "日本", "x y"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(FRAGMENTS, max_size=25),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=12),
    prefilled=st.sampled_from([None, True, False]),
)
def test_any_chunking_gives_the_same_split(
    parts: list[str], cuts: list[int], prefilled: bool | None
) -> None:
    text = "".join(parts)
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    whole = run([text], prefilled)
    chunked = run(pieces, prefilled)
    assert chunked[:3] == whole[:3]
    char_by_char = run(list(text), prefilled)
    assert char_by_char[:3] == whole[:3]


@settings(max_examples=200, deadline=None)
@given(
    reasoning=st.text(alphabet="ab <>/\nü", max_size=30),
    answer=st.text(alphabet="cd <>/\n日", max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=8),
    prefill=st.booleans(),
)
def test_well_formed_output_splits_exactly(
    reasoning: str, answer: str, cuts: list[int], prefill: bool
) -> None:
    if "<think>" in reasoning + answer or "</think>" in reasoning + answer:
        return
    text = ("" if prefill else "<think>") + reasoning + "</think>" + answer
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    got_answer, got_reasoning, unclosed, deltas = run(pieces, True if prefill else None)
    assert (got_answer, got_reasoning, unclosed) == (answer.lstrip(), reasoning.lstrip(), False)
    assert all(d.text for d in deltas)
    assert run(pieces, None)[:3] == (answer.lstrip(), reasoning.lstrip(), False)
