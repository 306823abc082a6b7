"""The words that name a document are taken out of a question before it is embedded again."""

from __future__ import annotations

from service.focus import without_words


def test_naming_words_leave_the_question() -> None:
    question = "What was Zentrix's operating cash flow in the Q3 2023 10-Q?"

    assert without_words(question, {"zentrix", "q3"}) == (
        "What was operating cash flow in the 2023 10-Q?"
    )
    assert without_words(question, set()) == question
    assert without_words("Zentrix Q3", {"zentrix", "q3"}) == ""
