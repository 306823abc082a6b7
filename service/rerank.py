"""Optional cross-encoder reranking of the fused candidates (``INHOUSE_RERANK__MODEL_PATH``).

Any local sentence-transformers ``CrossEncoder`` folder; off when not configured. The
best ``candidates`` of the fused ranking are scored as (question, passage) pairs and
re-sorted; the per-document cap applies afterwards. Scores become a logistic (0-1) so
they read like the other modes' scores.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.index import Hit

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


class Reranker:
    """A cross-encoder loaded once, on first use; thread-safe."""

    def __init__(self, path: Path, *, candidates: int = 30, batch_size: int = 16) -> None:
        self.path = path
        self.candidates = candidates
        self.batch_size = batch_size
        self._model: CrossEncoder | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> CrossEncoder:
        with self._lock:
            if self._model is None:
                from sentence_transformers import CrossEncoder

                self._model = CrossEncoder(str(self.path), device="cpu", local_files_only=True)
            return self._model

    def rerank(self, question: str, hits: Sequence[Hit]) -> list[Hit]:
        """``hits`` (best first) with the first ``candidates`` re-ordered by the model."""
        head, tail = list(hits[: self.candidates]), list(hits[self.candidates :])
        if len(head) < 2:
            return [*head, *tail]
        raw: Any = self.model.predict(
            [(question, hit.text) for hit in head],
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        scores = [_logistic(float(s)) for s in raw.reshape(len(head), -1)[:, -1]]
        order = sorted(range(len(head)), key=lambda i: scores[i], reverse=True)
        floor = min(scores)
        return [replace(head[i], score=scores[i]) for i in order] + [
            replace(hit, score=min(hit.score, floor)) for hit in tail
        ]


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))
