"""Score retrieval for questions with source-document globs and reference answers.

- ``doc@5``: a source document (its file name, or path in the collection, matching one of
  the question's globs, case-insensitively) is among the sources of the top 5 chunks.
- ``figure@6``: a key figure of the reference answer (``service.figures``: 3+ significant
  digits, not a year) appears in the text of the top 6 chunks. Only questions whose answer
  has such a figure count; each metric reports its own ``n``.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from ingest.index import META_SOURCE
from service.evaluation.datasets import QAItem
from service.evaluation.metrics import mean, percentile
from service.evaluation.runner import SearchResult
from service.figures import figures_appear, key_figures

DOC_K = 5
FIGURE_K = 6
DEPTH = max(DOC_K, FIGURE_K)
METRIC_NAMES = (f"doc@{DOC_K}", f"figure@{FIGURE_K}")


def source_matches(source: str, globs: Sequence[str]) -> bool:
    """Whether a chunk's source path (or its file name) matches one of ``globs``."""
    name = PurePosixPath(source).name.lower()
    path = source.lower()
    return any(fnmatch.fnmatchcase(c, g.lower()) for g in globs for c in (name, path))


def score_question(item: QAItem, result: SearchResult) -> dict[str, Any]:
    sources = [str(hit.metadata.get(META_SOURCE, "")) for hit in result.hits]
    figures = key_figures(item.answer)
    found = figures_appear(figures, (hit.text for hit in result.hits[:FIGURE_K]))
    row: dict[str, Any] = {
        "line": item.line,
        "question": item.question,
        "type": item.question_type,
        "chunk_type": item.chunk_type,
        METRIC_NAMES[0]: any(source_matches(s, item.source_globs) for s in sources[:DOC_K]),
        METRIC_NAMES[1]: bool(found) if figures else None,
        "figures": [f.text for f in figures],
        "figures_found": [f.text for f in found],
        "sources": sources[:FIGURE_K],
        "latency_ms": round(result.latency_ms, 2),
    }
    return row


def _summary(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for name in METRIC_NAMES:
        judged = [bool(row[name]) for row in rows if row[name] is not None]
        out[name] = {"value": round(mean(judged), 4), "hits": sum(judged), "n": len(judged)}
    return out


def score_qa(
    items: Sequence[QAItem],
    results: Sequence[SearchResult],
    *,
    dataset: str,
    per_query: bool = False,
) -> dict[str, Any]:
    """Metrics (each with its ``n``), latency, breakdown by question type, optional rows."""
    rows = [score_question(item, result) for item, result in zip(items, results, strict=True)]
    summary = _summary(rows)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_type[row["type"] or "(none)"].append(row)
    latencies = [r.latency_ms for r in results]
    out: dict[str, Any] = {
        "kind": "qa",
        "dataset": dataset,
        "queries": len(rows),
        "metrics": {name: summary[name]["value"] for name in METRIC_NAMES},
        "n": {name: summary[name]["n"] for name in METRIC_NAMES},
        "hits": {name: summary[name]["hits"] for name in METRIC_NAMES},
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p95": round(percentile(latencies, 95), 2),
        },
        "by_type": {
            kind: {name: s["value"] for name, s in _summary(group).items()} | {"n": len(group)}
            for kind, group in sorted(by_type.items())
        },
    }
    if per_query:
        out["per_query"] = rows
    return out
