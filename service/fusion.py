"""Fusing the dense and lexical rankings, and keeping one document from filling the results.

Two fusion methods (``INHOUSE_RETRIEVAL__FUSION``):

- ``convex``: each ranking's scores min-max normalised over its own candidates (a chunk
  absent from a ranking scores 0 there), then ``weight * lexical + (1 - weight) * dense``.
  Bruch et al. (2023, "An Analysis of Fusion Functions for Hybrid Retrieval") find a tuned
  convex combination ahead of RRF, and it keeps how far ahead the best candidate is, which
  ranks discard.
- ``rrf``: reciprocal rank fusion, ``sum 1 / (k + rank)``, weighted the same way; needs no
  tuning but ignores score gaps.

Measured (``tests/bench/fusion_tune.py``; SciFact train queries answerable from the 841
abstracts indexed by then, 164 queries, nDCG@10): dense 0.781, BM25 0.781, RRF 0.818,
convex 0.791 / 0.801 / 0.812 / **0.824** / 0.820 / 0.812 at lexical weight 0.1 ... 0.6.
Identifier lookups (40 near-identical generated policies, 160 questions,
``tests/service/test_hybrid.py``): dense 0.838 right first, RRF 0.95, convex (0.3-0.5) 1.0.
Hence convex. The weight, on the full sets (``inhouse eval``, same index each): SciFact train
nDCG@10 0.708 / 0.722 / 0.735 and sec10q dev figure@6 0.262 / 0.246 / 0.197 at 0.2 / 0.3 /
0.4 (BM25 favours short prose over the tables that hold the figures); 0.3 keeps SciFact above
0.72 and most of the sec10q gain.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

T = TypeVar("T")


def min_max(scores: Sequence[float]) -> list[float]:
    """Scores mapped onto [0, 1]; equal scores all map to 1."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high - low <= 1e-12:
        return [1.0] * len(scores)
    return [(s - low) / (high - low) for s in scores]


def fuse(
    dense: Sequence[tuple[str, float]],
    lexical: Sequence[tuple[str, float]],
    *,
    method: str,
    weight: float,
    rrf_k: int = 60,
) -> dict[str, float]:
    """Fused score of every candidate id of either ranking (each ranking best first)."""
    fused: dict[str, float] = {}
    if method == "rrf":
        for ranking, share in ((dense, 1.0 - weight), (lexical, weight)):
            for rank, (cid, _) in enumerate(ranking, start=1):
                fused[cid] = fused.get(cid, 0.0) + share / (rrf_k + rank)
        return fused
    for ranking, share in ((dense, 1.0 - weight), (lexical, weight)):
        for (cid, _), norm in zip(ranking, min_max([s for _, s in ranking])):
            fused[cid] = fused.get(cid, 0.0) + share * norm
    return fused


def diversify(
    ranked: Sequence[T],
    top_k: int,
    cap: int,
    document: Callable[[T], str],
    uncapped: Collection[str] = (),
) -> list[T]:
    """The first ``top_k`` of ``ranked`` with at most ``cap`` per document (0: no cap;
    except the documents in ``uncapped``), while other documents still have candidates;
    then the skipped ones fill the rest in order."""
    return [group[0] for group in take_groups(ranked, top_k, cap, document, uncapped)]


def take_groups(
    ranked: Sequence[T],
    top_k: int,
    cap: int,
    document: Callable[[T], str],
    uncapped: Collection[str] = (),
    joins: Callable[[list[T], T], bool] | None = None,
) -> list[list[T]]:
    """``diversify``, where a candidate that ``joins`` a group already taken from its
    document goes into that group instead of starting one (``service.passages``): the
    first ``top_k`` groups, the cap counting groups."""
    groups: list[list[T]] = []
    skipped: list[T] = []
    per_doc: dict[str, int] = {}
    for item in ranked:
        if len(groups) == top_k:
            break
        doc = document(item)
        taken = (g for g in groups if document(g[0]) == doc)
        joined = next((g for g in taken if joins(g, item)), None) if joins else None
        if joined is not None:
            joined.append(item)
        elif cap <= 0 or doc in uncapped or per_doc.get(doc, 0) < cap:
            per_doc[doc] = per_doc.get(doc, 0) + 1
            groups.append([item])
        else:
            skipped.append(item)
    # not enough other documents: the capped ones come back
    groups.extend([item] for item in skipped[: top_k - len(groups)])
    return groups
