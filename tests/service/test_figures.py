"""Figure extraction and matching (``service.figures``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.figures import (
    PassageFigures,
    extract_figures,
    figures_appear,
    key_figures,
    significant_digits,
)


@pytest.mark.parametrize(
    ("digits", "expected"),
    [("82959", 5), ("1200", 2), ("100", 1), ("0.0125", 3), ("11.0", 3), ("11.20", 4), ("7", 1)],
)
def test_significant_digits(digits: str, expected: int) -> None:
    assert significant_digits(digits) == expected


def test_normalises_separators_currency_percent_parentheses_and_scale() -> None:
    found = {
        f.text: f for f in extract_figures("Sales $82,959 million; margin 45.2%; loss (1,234.50)")
    }

    assert found["$82,959 million"].value == Decimal(82959)
    assert found["$82,959 million"].scaled == Decimal(82_959_000_000)
    assert found["45.2%"].value == Decimal("45.2")
    assert found["1,234.50"].value == Decimal("1234.5")


def test_key_figures_skip_years_short_numbers_and_identifiers() -> None:
    text = (
        "For the quarter ended June 25, 2022 (SOURCE: 2022 Q3 AAPL.pdf, Form 10-Q) net sales"
        " were $82,959 million, up 2% from 1,200 stores and $11.0 billion; 2022 again: 82,959."
    )

    assert [f.text for f in key_figures(text)] == ["$82,959 million", "$11.0 billion"]


def test_a_year_with_currency_or_separator_is_a_figure() -> None:
    assert [f.text for f in key_figures("in 2023 it cost $2023 for 1,987 units")] == [
        "$2023",
        "1,987",
    ]


def test_figures_appear_by_value_as_written_or_by_scaled_value() -> None:
    passages = [
        "Total net sales (in millions) 82,959 97,278",
        "Operating income was $1.2345 billion in the period.",
    ]

    answer = key_figures(
        "Net sales were $82,959 million; income $1,234.5 million; cash $52.9 billion"
    )
    found = figures_appear(answer, passages)

    assert [f.text for f in found] == ["$82,959 million", "$1,234.5 million"]


def test_short_passage_numbers_do_not_match_a_precise_answer_figure() -> None:
    passages = PassageFigures(["We operate 11 segments.", "Revenue was $3.9 billion."])

    assert key_figures("$11.0 billion")[0] not in passages
    assert key_figures("$3.90 billion")[0] in passages  # same scaled value as "$3.9 billion"
    assert key_figures("3.90")[0] not in passages


def test_numbers_inside_words_and_versions_are_not_figures() -> None:
    assert extract_figures("Q3 v1.2.3 5G x86 3rd H100") == []
