"""service.grounding: figures found and normalised, answers checked against their cited
passages, extracts quoted verbatim from the passages (bad input included)."""

from __future__ import annotations

import pytest

from service.grounding import Passage, check_answer, extract
from service.grounding.extract import units
from service.grounding.figures import find_figures, parse_number

REPORT = (
    "Total net sales (in millions): Products 94,836 and Services 24,213. Net sales rose"
    " 12% year over year. The quarter ended on September 30, 2024."
)
HANDBOOK = "New employees receive twenty-eight days of paid vacation. Requests go to HR."


def values(text: str) -> list[tuple[str, float]]:
    return [(f.kind, f.value) for f in find_figures(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$94.8 billion", [("amount", 94.8e9)]),
        ("94,836 million", [("amount", 94_836e6)]),
        ("12 %", [("percent", 12.0)]),
        ("12.5 percent", [("percent", 12.5)]),
        ("twenty-eight days", [("count", 28.0)]),
        ("€1.234.567,89", [("amount", 1_234_567.89)]),
        ("94,8 Mrd. €", [("amount", 94.8e9)]),
        ("$5M", [("amount", 5e6)]),
        ("March 31, 2024", [("date", 20240331)]),
        ("31 March 2024", [("date", 20240331)]),
        ("2024-03-31", [("date", 20240331)]),
        ("in fiscal 2023", [("year", 2023.0)]),
    ],
)
def test_figures_are_normalised(text: str, expected: list[tuple[str, float]]) -> None:
    assert values(text) == expected


def test_identifiers_citations_references_and_code_are_not_figures() -> None:
    text = (
        "1. See Note 7 and Item 2 of the 10-K [3], the 401(k) plan in Q3, the 5th floor.\n"
        "```\nport = 8080\n``` and `retries = 5`"
    )
    assert find_figures(text) == []


def test_separators_and_precision() -> None:
    assert parse_number("94,836") == (94836.0, 1.0)
    assert parse_number("94,8") == (94.8, pytest.approx(0.1))
    assert parse_number("1,234.56") == (1234.56, pytest.approx(0.01))


@pytest.mark.parametrize(
    "answer",
    [
        "Net sales were $94.8 billion [1].",  # rescaled: 94,836 (in millions)
        "Products brought in 94,836 million dollars [1].",  # reformatted
        "Products: $94,836 million; services: $24.2 billion [1].",
        "Sales rose 12 percent [1] in the quarter ended Sept. 30, 2024 [1].",
        "The quarter ended September 30, 2024 [1].",
        "Employees get 28 days of vacation [2].",  # number words in the passage
        'The report says sales "rose 12% year over year" [1].',  # a true quote
    ],
)
def test_supported_figures_and_quotes_pass(answer: str) -> None:
    grounding = check_answer(answer, {1: REPORT, 2: HANDBOOK})
    assert grounding.unsupported == [], grounding
    assert grounding.checked >= 1 and grounding.invalid_citations == []


@pytest.mark.parametrize(
    ("answer", "flagged"),
    [
        ("Net sales were $97.3 billion [1].", "$97.3 billion"),
        ("Net sales rose 15% [1].", "15%"),
        ("Employees get 30 days of vacation [2].", "30"),
        ("The quarter ended on June 30, 2024 [1].", "June 30, 2024"),
        ('The report calls it "a record quarter" [1].', '"a record quarter"'),
    ],
)
def test_invented_figures_and_quotes_are_flagged_with_their_span(answer: str, flagged: str) -> None:
    grounding = check_answer(answer, {1: REPORT, 2: HANDBOOK})
    assert [u.text for u in grounding.unsupported] == [flagged]
    start, end = grounding.unsupported[0].span
    assert answer[start:end] == flagged


def test_figures_are_checked_only_against_the_cited_passages() -> None:
    # 28 is in passage 2, but the answer cites only passage 1
    assert [
        u.text for u in check_answer("Staff get 28 days [1].", {1: REPORT, 2: HANDBOOK}).unsupported
    ] == ["28"]
    # without any citation, every passage counts
    assert check_answer("Staff get 28 days.", {1: REPORT, 2: HANDBOOK}).unsupported == []


def test_figures_from_the_question_are_not_invented() -> None:
    grounding = check_answer("In 2019 nothing was reported [1].", {1: HANDBOOK}, "What about 2019?")
    assert grounding.unsupported == []


def test_citations_to_no_passage_are_invalid() -> None:
    grounding = check_answer("Sales rose 12% [1][4], see also [7].", {1: REPORT, 2: HANDBOOK})
    assert grounding.invalid_citations == [4, 7]
    assert grounding.unsupported == []


def test_no_figures_other_languages_tables_and_code() -> None:
    assert check_answer("The documents do not say [1].", {1: REPORT}).checked == 0
    german = check_answer("Der Umsatz betrug 94,8 Mrd. $ und stieg um 12 % [1].", {1: REPORT})
    assert german.unsupported == [] and german.checked == 2
    french = check_answer("Les ventes ont atteint 97,3 milliards de dollars [1].", {1: REPORT})
    assert [u.text for u in french.unsupported] == ["97,3 milliards"]
    table = (
        "| Item | Value |\n|---|---|\n| Products | $94,836 million [1] |\n| Services | 31,000 [1] |"
    )
    assert [u.text for u in check_answer(table, {1: REPORT}).unsupported] == ["31,000"]
    code = "Run it with:\n```\nworkers = 97\n```\nSales rose 12% [1]."
    assert check_answer(code, {1: REPORT}).unsupported == []


def test_a_long_answer_is_checked_whole() -> None:
    sentence = "Net sales were $94.8 billion [1] and then $97.3 billion [1]. "
    answer = sentence * (20_000 // len(sentence))
    grounding = check_answer(answer, {1: REPORT})
    repeats = 20_000 // len(sentence)
    assert len(answer) > 19_000
    assert grounding.checked == 2 * repeats
    assert len(grounding.unsupported) == repeats


PASSAGES = [
    Passage(1, HANDBOOK + " Vacation requests go to the team lead two weeks ahead.", 0.6),
    Passage(2, "Remote work is allowed up to three days a week.", 0.4),
    Passage(3, REPORT, 0.3),
]


def test_extract_quotes_the_best_sentences_verbatim_with_citations() -> None:
    result = extract("How many vacation days do new employees get?", PASSAGES)
    assert result.quotes and result.quotes[0].n == 1
    assert "twenty-eight days of paid vacation" in result.quotes[0].text
    for quote in result.quotes:
        assert quote.text in PASSAGES[quote.n - 1].text  # verbatim
    assert result.text.startswith("“New employees receive twenty-eight days")
    assert "[1]" in result.text and result.cited[0] == 1
    assert "Remote work" not in result.text  # unrelated sentences stay out


def test_extract_keeps_passage_order_and_its_budget() -> None:
    result = extract("vacation sales quarter remote work", PASSAGES, max_quotes=3, max_chars=300)
    numbers = [q.n for q in result.quotes]
    assert numbers == sorted(numbers)
    assert sum(len(q.text) for q in result.quotes) <= 300 or len(result.quotes) == 1


def test_passages_without_sentence_boundaries_give_their_best_lines() -> None:
    table = "Region  Q1  Q2\nEurope  1,200  1,350\nAmericas  2,100  2,250\nAsia  800  900"
    listing = "- parking permits\n- badge renewal\n- locker keys at reception"
    result = extract("What were Asia sales?", [Passage(1, table, 0.5), Passage(2, listing, 0.4)])
    assert "Asia  800  900" in [q.text for q in result.quotes]
    wall = "word " * 2000  # no boundaries at all, one line
    cut = units(wall)
    assert cut and all(len(u) <= 400 for u in cut)
    assert extract("anything", [Passage(1, wall, 0.1)]).quotes  # never empty


def test_extract_is_never_empty_when_nothing_matches() -> None:
    result = extract("Quelle est la politique de stationnement ?", PASSAGES)
    assert len(result.quotes) >= 1


def test_an_answer_may_round_a_source_but_not_add_digits_to_it() -> None:
    rounded = check_answer("The rate was 21% [1].", {1: "Effective tax rate 21.1 %"})
    assert rounded.unsupported == []
    finer = check_answer("The rate was 21.1% [1].", {1: "Statutory rate 21 %"})
    assert [u.text for u in finer.unsupported] == ["21.1%"]
    more = check_answer("Sales were $94,836 million [1].", {1: "Sales were $94.8 billion."})
    assert [u.text for u in more.unsupported] == ["$94,836 million"]
