"""Ingest test fixtures: the generated document corpus, written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ingest.fixtures import make_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{name: path}`` of one generated file per format plus the broken and hostile ones."""
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def corpus_dir(corpus: dict[str, Path]) -> Path:
    """The folder holding the generated corpus."""
    return next(iter(corpus.values())).parent
