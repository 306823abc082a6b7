"""service.grounding.attribute: uncited sentences cited by the passage that supports them,
citations to no passage removed, unsupported sentences left uncited, spans exact."""

from __future__ import annotations

import pytest

from service.grounding import Attribution, attribute

VACATION = (
    "Vacation policy\nEmployees receive 27 days of paid vacation per year. Requests go to"
    " the team lead two weeks in advance."
)
PARKING = "parking.txt\nThe parking garage opens at 6:30 on weekdays."
PASSAGES = {1: VACATION, 2: PARKING}


def marks(result: Attribution) -> list[tuple[int, str, str]]:
    """(n, the mark's text, the sentence's text) of each inserted mark, read by its spans."""
    text = result.text
    return [
        (a.n, text[a.span[0] : a.span[1]], text[a.sentence[0] : a.sentence[1]])
        for a in result.attributed
    ]


def test_an_answer_without_citations_gets_them_per_sentence() -> None:
    answer = "Employees get 27 days of paid vacation. The parking garage opens on weekdays."

    result = attribute(answer, PASSAGES)

    assert result.text == (
        "Employees get 27 days of paid vacation [1]. The parking garage opens on weekdays [2]."
    )
    assert marks(result) == [
        (1, "[1]", "Employees get 27 days of paid vacation [1]."),
        (2, "[2]", "The parking garage opens on weekdays [2]."),
    ]
    assert result.removed == []
    assert all(0.5 <= a.score <= 1 for a in result.attributed)


def test_a_citation_past_the_source_list_is_removed_and_the_sentence_attributed() -> None:
    # what Gemma 3 270M writes after two sources: a third source heading of its own
    answer = "[3] parking.txt\nThe parking garage opens at 6:30 on weekdays."

    result = attribute(answer, PASSAGES)

    assert result.removed == [3]
    assert "[3]" not in result.text and result.text.startswith("parking.txt")
    assert result.text.endswith("The parking garage opens at 6:30 on weekdays [2].")
    assert [n for n, *_ in marks(result)] == [2, 2]


@pytest.mark.parametrize(
    ("answer", "expected", "removed"),
    [
        ("Employees get 27 days [1][9].", "Employees get 27 days [1].", [9]),
        ("Employees get 27 days [1, 9].", "Employees get 27 days [1].", [9]),
        # the model's own (valid) citation stays, even to a passage that does not say it
        ("Requests go to the team lead [2-4].", "Requests go to the team lead [2].", [3, 4]),
        # the sentence lost its only mark: it is attributed like any uncited sentence
        (
            "Vacation[7] requests go to the team lead.",
            "Vacation requests go to the team lead [1].",
            [7],
        ),
    ],
)
def test_invalid_numbers_are_dropped_valid_ones_kept(
    answer: str, expected: str, removed: list[int]
) -> None:
    result = attribute(answer, PASSAGES)

    assert result.text == expected and result.removed == removed
    assert len(result.attributed) == ("[7]" in answer)


def test_a_sentence_no_passage_supports_stays_uncited() -> None:
    answer = "Employees get 27 days of paid vacation. The cafeteria serves soup at noon."

    result = attribute(answer, PASSAGES)

    assert result.text == (
        "Employees get 27 days of paid vacation [1]. The cafeteria serves soup at noon."
    )
    assert [n for n, *_ in marks(result)] == [1]


def test_a_figure_no_passage_states_keeps_the_sentence_uncited() -> None:
    # the words match the vacation passage, the figure does not: no citation to lend it
    result = attribute("Employees get 30 days of paid vacation per year.", PASSAGES)

    assert result.attributed == [] and result.text.endswith("per year.")


def test_one_shared_word_is_not_support() -> None:
    result = attribute("Weekdays are busy.", PASSAGES)

    assert result.attributed == []


def test_cited_sentences_questions_code_and_headings_are_left_alone() -> None:
    answer = (
        "## Vacation policy\n"
        "How many days of paid vacation do employees get?\n"
        "Employees get 27 days of paid vacation [2].\n"
        "```\nemployees receive 27 days of paid vacation\n```\n"
        "| Employees | 27 days of paid vacation |"
    )

    result = attribute(answer, PASSAGES)

    assert result.text == answer and result.attributed == []  # [2] is the model's own


def test_list_items_and_bold_text_get_the_mark_before_the_full_stop() -> None:
    answer = "- **27 days** of paid vacation per year.\n- Requests go to the team lead"

    result = attribute(answer, PASSAGES)

    assert result.text == (
        "- **27 days** of paid vacation per year [1].\n- Requests go to the team lead [1]"
    )
    assert [s for *_, s in marks(result)] == [
        "**27 days** of paid vacation per year [1].",
        "Requests go to the team lead [1]",
    ]


def test_ties_go_to_the_better_retrieved_passage() -> None:
    same = "Employees receive 27 days of paid vacation per year."

    result = attribute("Employees receive 27 days of paid vacation.", {1: same, 2: same})

    assert [n for n, *_ in marks(result)] == [1]


def test_an_answer_of_invalid_marks_only_is_left_as_it_was() -> None:
    result = attribute("[3]", PASSAGES)

    assert result.text == "[3]" and result.removed == [] and result.attributed == []


def test_no_passages_removes_every_mark_and_attributes_nothing() -> None:
    result = attribute("Employees get 27 days [1].", {})

    assert result.text == "Employees get 27 days." and result.removed == [1]
    assert result.attributed == []
