"""The document prior's rules on whole-document scores: rescaling, the named document,
and newest-first for "latest" questions."""

from __future__ import annotations

from ingest.lexical_docs import DocumentMatch
from service.document_prior import (
    MAX_RIVALS,
    PRIOR_FLOOR,
    Outnames,
    document_prior,
    named_document,
    newest_first,
)


def test_scores_are_rescaled_best_one_floor_zero() -> None:
    matches = {"a": DocumentMatch(10.0, 0), "b": DocumentMatch(9.0, 0), "c": DocumentMatch(5.0, 0)}
    prior = document_prior(matches, latest=False, latest_boost=0.2, named_ratio=0)
    assert prior.scores["a"] == 1.0
    assert abs(prior.scores["b"] - (9 - 10 * PRIOR_FLOOR) / (10 - 10 * PRIOR_FLOOR)) < 1e-9
    assert "c" not in prior.scores  # under the floor: no prior
    assert prior.named is None  # ratio 0: never
    assert document_prior({}, latest=True, latest_boost=0.2, named_ratio=1.25).scores == {}


def test_a_document_is_named_only_when_it_stands_out() -> None:
    assert named_document({"a": 13.0, "b": 10.0}, 1.25) == "a"
    assert named_document({"a": 12.0, "b": 10.0}, 1.25) is None
    assert named_document({"a": 3.0}, 1.25) == "a"  # the only match
    assert named_document({}, 1.25) is None


def test_a_document_is_named_when_its_opening_matches_more_of_the_question() -> None:
    """Within the ratio, the best document is named when its opening outnames those of
    the documents scoring within the ratio of it (``LexicalIndex.opening_outnames``)."""
    scores = {"q3-2023": 11.0, "q3-2022": 10.0, "q2-2023": 9.5, "far": 5.0}
    asked: list[tuple[str, list[str]]] = []

    def outnames(answer: bool) -> Outnames:
        def check(best: str, rivals: list[str]) -> bool:
            asked.append((best, rivals))
            return answer

        return check

    assert named_document(scores, 1.25) is None  # by the scores alone
    assert named_document(scores, 1.25, outnames(True)) == "q3-2023"
    assert asked == [("q3-2023", ["q3-2022", "q2-2023"])]  # the best and its rivals only
    assert named_document(scores, 1.25, outnames(False)) is None
    assert named_document(scores, 1.1, outnames(False)) == "q3-2023"  # 11 >= 1.1 x 10
    assert named_document(scores, 0, outnames(True)) is None  # ratio 0: never
    assert len(asked) == 2  # not asked when the scores decide
    # a question that many documents match alike names none, their openings not compared
    alike = {"best": 10.0} | {f"peer-{i}": 9.0 for i in range(MAX_RIVALS + 1)}
    assert named_document(alike, 1.25, outnames(True)) is None
    assert len(asked) == 2
    assert (
        named_document(dict(list(alike.items())[: MAX_RIVALS + 1]), 1.25, outnames(True)) == "best"
    )


def test_newest_first_orders_only_documents_matched_alike() -> None:
    matches = {
        "q1": DocumentMatch(10.0, 20230401),
        "q2": DocumentMatch(9.5, 20230701),
        "q3": DocumentMatch(9.0, 20230930),
        "other": DocumentMatch(7.0, 20240101),  # newer, but matched far less (outside 20%)
        "undated": DocumentMatch(9.9, 0),
    }
    scores, newest = newest_first(matches, 0.2)
    assert newest == "q3" and max(scores, key=scores.__getitem__) == "q3"
    assert scores["q3"] == 10.0
    assert scores["q1"] == PRIOR_FLOOR * 10.0 and scores["q2"] == PRIOR_FLOOR * 9.5
    assert scores["other"] == 7.0 and scores["undated"] == 9.9  # untouched

    prior = document_prior(matches, latest=True, latest_boost=0.2, named_ratio=0)
    assert prior.scores["q3"] == 1.0 and "q1" not in prior.scores

    one = {"q1": DocumentMatch(10.0, 20230401), "x": DocumentMatch(5.0, 20250101)}
    assert newest_first(one, 0.2) == ({"q1": 10.0, "x": 5.0}, None)  # nothing to order


def test_the_newest_document_of_a_latest_question_is_the_named_one() -> None:
    # "Acme's latest quarterly report": three reports matched alike, and an undated memo
    # close behind that keeps the newest from scoring 1.25x the next
    matches = {
        "q1": DocumentMatch(10.0, 20230401),
        "q2": DocumentMatch(9.8, 20230701),
        "q3": DocumentMatch(9.6, 20230930),
        "memo": DocumentMatch(9.0, 0),
    }
    latest = document_prior(matches, latest=True, latest_boost=0.2, named_ratio=1.25)
    assert latest.named == "q3"
    assert document_prior(matches, latest=False, latest_boost=0.2, named_ratio=1.25).named is None
    never = document_prior(matches, latest=True, latest_boost=0.2, named_ratio=0)
    assert never.named is None and never.scores["q3"] == 1.0  # naming off: ordered only
    assert named_document({"q3": 10.0, "memo": 9.0}, 1.25) is None  # the ratio alone: none
    undated = {doc: DocumentMatch(m.score, 0) for doc, m in matches.items()}
    assert document_prior(undated, latest=True, latest_boost=0.2, named_ratio=1.25).named is None
