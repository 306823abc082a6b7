"""Eval metrics on constructed rankings, with values computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ingest.index import META_SOURCE, Hit
from service.evaluation.beir import score_beir
from service.evaluation.datasets import BeirSet, CorpusDoc, QAItem
from service.evaluation.metrics import (
    document_ranking,
    mrr_at_k,
    ndcg_at_k,
    percentile,
    recall_at_k,
)
from service.evaluation.qa import score_qa, source_matches
from service.evaluation.runner import SearchResult

LOG3 = math.log2(3)
LOG5 = math.log2(5)


def test_document_ranking_keeps_each_documents_best_chunk() -> None:
    assert document_ranking(["a", "a", "b", "a", "c", "b"]) == ["a", "b", "c"]


def test_ndcg_binary_by_hand() -> None:
    # relevant d1 at rank 2 and d2 at rank 4: DCG = 1/log2(3) + 1/log2(5); ideal 1 + 1/log2(3)
    ranking = ["d3", "d1", "d5", "d2"]
    expected = (1 / LOG3 + 1 / LOG5) / (1 + 1 / LOG3)

    assert ndcg_at_k(ranking, {"d1": 1, "d2": 1}, 10) == pytest.approx(expected)
    assert expected == pytest.approx(0.650921, abs=1e-6)
    assert ndcg_at_k(ranking, {"d1": 1, "d2": 1}, 3) == pytest.approx((1 / LOG3) / (1 + 1 / LOG3))


def test_ndcg_graded_gains_are_linear_and_zero_grades_ignored() -> None:
    qrels = {"a": 2, "b": 1, "z": 0}
    # ranking b, a: DCG = 1 + 2/log2(3); ideal a, b: 2 + 1/log2(3)
    assert ndcg_at_k(["b", "a", "z"], qrels, 10) == pytest.approx((1 + 2 / LOG3) / (2 + 1 / LOG3))
    assert ndcg_at_k(["z"], {"z": 0}, 10) == 0.0


def test_recall_and_mrr_by_hand() -> None:
    qrels = {"r1": 1, "r2": 1}
    ranking = ["x", "y", "r1"] + [f"n{i}" for i in range(10)] + ["r2"]

    assert recall_at_k(ranking, qrels, 3) == 0.5
    assert recall_at_k(ranking, qrels, 100) == 1.0
    assert mrr_at_k(ranking, qrels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(ranking[3:], qrels, 10) == 0.0  # r2 at rank 11 is past the cut-off


def test_percentile_interpolates() -> None:
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([5.0], 95) == 5.0
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def _hit(source: str, text: str = "") -> Hit:
    return Hit(id=f"{source}:{text[:8]}", text=text, metadata={META_SOURCE: source}, score=0.5)


def test_score_beir_maps_chunks_to_documents_and_averages() -> None:
    data = BeirSet(
        name="toy",
        root=Path("."),
        split="test",
        corpus_path=Path("corpus.jsonl"),
        corpus=[CorpusDoc(i, "", "x") for i in ("d1", "d2", "d3")],
        queries={"q1": "a", "q2": "b"},
        qrels={"q1": {"d1": 1, "d2": 1}, "q2": {"d3": 1}},
    )
    sources = {"d1.md": "d1", "d2.md": "d2", "d3.md": "d3"}
    results = [
        # q1: chunks d3, d1, d1, d2 -> documents d3, d1, d2: DCG 1/log2(3) + 1/log2(4)
        SearchResult("q1", [_hit("d3.md"), _hit("d1.md"), _hit("d1.md"), _hit("d2.md")], 10.0),
        # q2: an unknown file's chunk is skipped; d3 first
        SearchResult("q2", [_hit("stray.md"), _hit("d3.md")], 30.0),
    ]

    run = score_beir(data, results, sources, per_query=True)

    q1 = (1 / LOG3 + 1 / 2) / (1 + 1 / LOG3)
    assert run["metrics"]["ndcg@10"] == pytest.approx((q1 + 1.0) / 2, abs=1e-4)
    assert run["metrics"]["mrr@10"] == pytest.approx((0.5 + 1.0) / 2)
    assert run["metrics"]["recall@100"] == 1.0
    assert run["latency_ms"] == {"p50": 20.0, "p95": 29.0}
    assert run["per_query"][0]["top"] == ["d3", "d1", "d2"]
    assert run["queries"] == 2 and run["short_rankings"] == 2


def test_source_globs_match_file_name_or_path_case_insensitively() -> None:
    assert source_matches("filings/2023 Q3 AAPL.pdf", ["*2023 Q3 AAPL*"])
    assert source_matches("2023 Q3 aapl.pdf", ["*AAPL*"])
    assert not source_matches("2023 Q2 AAPL.pdf", ["*2023 Q3 AAPL*", "*MSFT*"])


def test_score_qa_doc_at_5_and_figure_at_6_with_their_own_n() -> None:
    filler = [_hit(f"other{i}.pdf", "nothing here") for i in range(4)]
    items = [
        QAItem(2, "q1", ("*AAPL*",), "Sales were $82,959 million."),  # both hit
        QAItem(3, "q2", ("*AAPL*",), "It grew."),  # no figure: not counted for figure@6
        QAItem(4, "q3", ("*MSFT*",), "Revenue was $56,189 million."),  # source 6th, figure 7th
    ]
    results = [
        SearchResult("2", [*filler, _hit("2023 Q3 AAPL.pdf", "Net sales 82,959")], 1.0),
        SearchResult("3", [_hit("2022 Q3 AAPL.pdf", "x"), *filler], 1.0),
        SearchResult(
            "4",
            [*filler, _hit("a.pdf"), _hit("MSFT.pdf"), _hit("b.pdf", "Revenue 56,189")],
            1.0,
        ),
    ]

    run = score_qa(items, results, dataset="toy", per_query=True)

    assert run["metrics"] == {"doc@5": pytest.approx(2 / 3, abs=1e-4), "figure@6": 0.5}
    assert run["n"] == {"doc@5": 3, "figure@6": 2}
    assert [row["figure@6"] for row in run["per_query"]] == [True, None, False]
    assert run["per_query"][0]["figures_found"] == ["$82,959 million"]
