"""Score retrieved chunks against BEIR relevance judgments (document level).

The JSON shape (``kind: "beir"``) is shared by every run so two can be compared::

    {"kind": "beir", "dataset": "scifact", "split": "train", "collection": "beir-scifact",
     "queries": 809, "metrics": {"ndcg@10": .., "recall@100": .., "mrr@10": ..},
     "latency_ms": {"p50": .., "p95": ..}, "config": {...}, "index": {...},
     "per_query": [...]}   # only when asked for
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ingest.index import META_SOURCE
from service.evaluation.datasets import BeirSet
from service.evaluation.metrics import (
    document_ranking,
    mean,
    mrr_at_k,
    ndcg_at_k,
    percentile,
    recall_at_k,
)
from service.evaluation.runner import SearchResult

NDCG_K = 10
RECALL_K = 100
MRR_K = 10
METRIC_NAMES = (f"ndcg@{NDCG_K}", f"recall@{RECALL_K}", f"mrr@{MRR_K}")


def doc_ids_of(result: SearchResult, source_ids: Mapping[str, str]) -> list[str]:
    """Corpus ids in the order of their best chunk (chunks of unknown files are skipped)."""
    ids = (source_ids.get(str(hit.metadata.get(META_SOURCE, ""))) for hit in result.hits)
    return document_ranking(i for i in ids if i is not None)


def score_beir(
    data: BeirSet,
    results: Sequence[SearchResult],
    source_ids: Mapping[str, str],
    *,
    per_query: bool = False,
) -> dict[str, Any]:
    """Metrics, latency and (optionally) per-query rows for a BEIR run."""
    rows = []
    for result in results:
        ranking = doc_ids_of(result, source_ids)
        qrels = data.qrels[result.key]
        rows.append(
            {
                "query_id": result.key,
                METRIC_NAMES[0]: ndcg_at_k(ranking, qrels, NDCG_K),
                METRIC_NAMES[1]: recall_at_k(ranking, qrels, RECALL_K),
                METRIC_NAMES[2]: mrr_at_k(ranking, qrels, MRR_K),
                "documents_retrieved": len(ranking),
                "top": ranking[:NDCG_K],
                "relevant": sorted(d for d, g in qrels.items() if g > 0),
                "latency_ms": round(result.latency_ms, 2),
            }
        )
    latencies = [r.latency_ms for r in results]
    out: dict[str, Any] = {
        "kind": "beir",
        "dataset": data.name,
        "split": data.split,
        "queries": len(rows),
        "metrics": {name: round(mean(row[name] for row in rows), 4) for name in METRIC_NAMES},
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p95": round(percentile(latencies, 95), 2),
        },
        "short_rankings": sum(1 for row in rows if row["documents_retrieved"] < RECALL_K),
    }
    if data.skipped:
        out["skipped_judgments"] = dict(data.skipped)
    if per_query:
        out["per_query"] = rows
    return out
