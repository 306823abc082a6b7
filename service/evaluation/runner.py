"""Ask many questions through the service's own retrieval and time each search.

The retriever is the one ``inhouse serve`` builds (``service.api.deps.Resources``), from
the same settings, and every question goes through ``Retriever.search`` as a system caller
allowed everything, so whatever the service does by default (encoder, fusion, options) is
what is measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ingest.index import Hit
from service.caller import ALL_COLLECTIONS, SCOPE_ADMIN, Caller
from service.retrieval import Retriever
from service.settings import ServiceSettings

EVAL_CALLER = Caller(
    id="system:eval",
    name="inhouse eval",
    scopes=frozenset({SCOPE_ADMIN}),
    collections=frozenset({ALL_COLLECTIONS}),
)


@dataclass(frozen=True, slots=True)
class SearchResult:
    key: str
    hits: list[Hit]
    latency_ms: float


async def search_all(
    retriever: Retriever,
    questions: Sequence[tuple[str, str]],
    collections: Sequence[str],
    depth: int,
    *,
    on_done: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[SearchResult]:
    """Search each ``(key, text)`` in turn, one at a time (latency of a lone question)."""
    results = []
    for done, (key, text) in enumerate(questions, start=1):
        started = clock()
        hits = await retriever.search(text, list(collections), depth, caller=EVAL_CALLER)
        results.append(SearchResult(key, hits, (clock() - started) * 1000))
        if on_done is not None:
            on_done(done)
    return results


def retrieval_config(settings: ServiceSettings, retriever: Retriever, depth: int) -> dict[str, Any]:
    """What a run's figures depend on: encoder, chunking, retrieval settings, depth."""
    config: dict[str, Any] = {
        "embedder": retriever.index.embedder.name,
        "embedder_dimension": retriever.index.embedder.dimension,
        "chunk_tokens": settings.chunk.tokens,
        "chunk_overlap": settings.chunk.overlap,
        "depth": depth,
    }
    # Retrieval options (mode, fusion, weights, reranker), wherever they are configured.
    for name in ("retrieval", "rerank"):
        config[name] = getattr(settings, name).model_dump(mode="json")
    describe = getattr(retriever, "describe_config", None)
    if callable(describe):
        config["retriever"] = describe()
    config.setdefault("retrieval", {"mode": "dense"})
    return config
