"""Dates in a document's opening, and questions that ask for the newest document."""

from __future__ import annotations

import pytest

from ingest.doc_dates import asks_for_latest, opening_date


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("For the quarterly period ended July 1, 2023", 20230701),
        ("period ended Jul. 1 2023", 20230701),
        ("Signed on the 3rd of March, 2024 in Lyon", 20240303),
        ("Revised March 2024", 20240301),
        ("Effective: 2024-03-01", 20240301),
        ("issued 2024/3/9", 20240309),
        ("as of 12/31/2022", 20221231),
        # the latest of several dates wins, whatever their order and form
        ("Quarter ended December 31, 2022. As of January 20, 2023: 15,842,407 shares", 20230120),
        ("Approved 2021-05-01, amended 1 June 2023, first issued May 2019", 20230601),
    ],
)
def test_opening_dates_are_read_in_common_forms(text: str, expected: int) -> None:
    assert opening_date(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Revenue for 2023 rose by 4% against 2022",  # years alone are not dates
        "February 30, 2023 and 13/45/2023",  # impossible dates
        "in May we met; see note 12/31",  # no year
        "July 1, 2400",  # out of range
    ],
)
def test_text_without_a_real_date_has_none(text: str) -> None:
    assert opening_date(text) == 0


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What was the gross margin in the latest 10-Q?", True),
        ("In the most recent report, how did revenue change?", True),
        ("Which is the newest travel policy?", True),
        ("the most-recent filing", True),
        ("How did revenue change over the last four quarters?", False),
        ("What did the report say about recent acquisitions?", False),
        ("Was the policy current in 2021?", False),
    ],
)
def test_questions_asking_for_the_newest_document(question: str, expected: bool) -> None:
    assert asks_for_latest(question) is expected
