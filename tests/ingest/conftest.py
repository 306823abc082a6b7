"""Ingest test fixtures: the generated document corpus, written once per session, and
parser pools shared by pipelines that run one after another."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from ingest.documents import ParsedDocument
from ingest.errors import FileRejected
from ingest.isolation import ParserPool
from ingest.settings import ParseSettings
from tests.ingest.fixtures import make_corpus

K = TypeVar("K")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{name: path}`` of one generated file per format plus the broken and hostile ones."""
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def corpus_dir(corpus: dict[str, Path]) -> Path:
    """The folder holding the generated corpus."""
    return next(iter(corpus.values())).parent


class _SharedPool:
    """A parser pool that outlives the pipeline runs using it: ``close()`` leaves it running."""

    def __init__(self, pool: ParserPool) -> None:
        self._pool = pool

    def parse_many(
        self, items: Iterable[tuple[K, Path]], *, stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[K, ParsedDocument | FileRejected]]:
        return self._pool.parse_many(items, stop=stop)

    def close(self) -> None:
        pass  # the session fixture closes the pool


@pytest.fixture(scope="session")
def shared_parsers() -> Iterator[Callable[[ParseSettings, int], _SharedPool]]:
    """A ``parser_factory`` for pipelines that run one after another: one real pool per
    (settings, size) for the whole session. Each new pool costs its worker's imports and
    warm-up (~10 s on 2 cores, several times that on a loaded machine), which tests of the
    pipeline's bookkeeping paid on every run; the pool's own behaviour is tested in
    test_isolation.py. Not for pipelines that run concurrently (one ``parse_many`` at a time).
    """
    pools: dict[tuple[str, int], ParserPool] = {}

    def factory(settings: ParseSettings, workers: int) -> _SharedPool:
        key = (settings.model_dump_json(), workers)
        if key not in pools:
            pools[key] = ParserPool(settings, workers=workers)
        return _SharedPool(pools[key])

    try:
        yield factory
    finally:
        for pool in pools.values():
            pool.close()
