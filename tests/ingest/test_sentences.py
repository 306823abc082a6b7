"""unstructured's paragraph classification with sentences from ``senter`` alone: the same
element kinds, and prose of several sentences never runs the whole spaCy pipeline."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.parse import warm_up
from ingest.sentences import _senter_only

PARAGRAPHS = [
    "Quarterly results",
    "INTRODUCTION",
    "Annual Report 2023",
    "1. Scope of the policy",
    "- a list item",
    "The committee approved the budget.",
    "Budget approved",
    "Net cash provided by operating activities 3,393 2,700",
    "Revenue grew 12% in the quarter. Costs fell by a third. We expect the trend to hold.",
    "Dr. Smith met Mr. Jones at 5 p.m. on Jan. 3 in St. Louis. They discussed the plan at length.",
    "Activation of receptor 2 upregulates catabolic pathways: a basic science study",
    " ".join(
        f"Patients in arm {i} were followed for {i + 6} months and most of them improved."
        for i in range(12)
    ),
]


def _kinds(tokenize: Any) -> list[str]:
    from unstructured.partition.text import element_from_text

    for cached in (tokenize._process_cached, tokenize.pos_tag, tokenize.word_tokenize):
        cached.cache_clear()
    return [type(element_from_text(text)).__name__ for text in PARAGRAPHS]


def test_same_element_kinds_as_the_whole_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    warm_up()
    from unstructured.nlp import tokenize

    nlp = tokenize._get_nlp()
    monkeypatch.setattr(
        tokenize, "_tokenize_for_cache", lambda text: tuple(s.text for s in nlp(text).sents)
    )
    whole = _kinds(tokenize)
    monkeypatch.setattr(tokenize, "_tokenize_for_cache", _senter_only(nlp))

    assert _kinds(tokenize) == whole
    assert {"Title", "NarrativeText", "ListItem"} <= set(whole)


def test_prose_of_several_sentences_skips_the_tagger() -> None:
    warm_up()
    from unstructured.nlp import tokenize
    from unstructured.partition.text import element_from_text

    for cached in (tokenize._process_cached, tokenize.pos_tag, tokenize.word_tokenize):
        cached.cache_clear()
    element = element_from_text(PARAGRAPHS[-1])
    assert type(element).__name__ == "NarrativeText"
    assert tokenize._process_cached.cache_info().misses == 0  # no whole-pipeline run

    element_from_text("Budget approved now")  # one short sentence: its tags are needed
    assert tokenize._process_cached.cache_info().misses == 1
