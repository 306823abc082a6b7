"""Ranking metrics at document level, as BEIR reports them (trec_eval definitions).

Retrieval returns chunks; a document ranks where its best chunk ranks
(``document_ranking``). Relevance judgments (qrels) map document ids to grades; a grade
of 0 or less is "not relevant". Gains are linear in the grade (trec_eval's ``ndcg_cut``,
which BEIR uses; the same as 2^grade - 1 for SciFact's binary judgments).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

Qrels = Mapping[str, int]


def document_ranking(doc_ids: Iterable[str]) -> list[str]:
    """Documents in the order of their best chunk: the first occurrence of each id."""
    return list(dict.fromkeys(doc_ids))


def relevant(qrels: Qrels) -> set[str]:
    return {doc for doc, grade in qrels.items() if grade > 0}


def ndcg_at_k(ranking: Sequence[str], qrels: Qrels, k: int) -> float:
    """Normalised discounted cumulative gain of the top ``k`` (0 with no relevant document)."""
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    if not ideal:
        return 0.0
    dcg = sum(
        max(qrels.get(doc, 0), 0) / math.log2(rank + 1)
        for rank, doc in enumerate(ranking[:k], start=1)
    )
    idcg = sum(grade / math.log2(rank + 1) for rank, grade in enumerate(ideal, start=1))
    return dcg / idcg


def recall_at_k(ranking: Sequence[str], qrels: Qrels, k: int) -> float:
    """Share of the relevant documents found in the top ``k``."""
    wanted = relevant(qrels)
    if not wanted:
        return 0.0
    return len(wanted.intersection(ranking[:k])) / len(wanted)


def mrr_at_k(ranking: Sequence[str], qrels: Qrels, k: int) -> float:
    """1 / rank of the first relevant document in the top ``k``, else 0."""
    wanted = relevant(qrels)
    for rank, doc in enumerate(ranking[:k], start=1):
        if doc in wanted:
            return 1.0 / rank
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), interpolated linearly between order statistics."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0
