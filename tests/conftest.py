"""Suite-wide fixtures: an isolated data dir per test and one shared encoder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import ingest  # noqa: F401  (zero-egress environment first)

pytest_plugins = ["tests.pg_support"]  # pg_server, pg_url, db_url, database


@pytest.fixture(scope="session")
def embedder() -> object:
    """The real all-MiniLM-L6-v2 encoder, loaded once per session."""
    from ingest.embed import Embedder

    model = Embedder()
    model.model  # noqa: B018  (load now)
    return model


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh INHOUSE_DATA_DIR for one test."""
    path = tmp_path / "data"
    monkeypatch.setenv("INHOUSE_DATA_DIR", str(path))
    yield path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def venv_bin(repo_root: Path) -> Path:
    """Folder of the project's console scripts (``inhouse``) for subprocess tests."""
    import sys

    return Path(sys.executable).parent


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("INHOUSE_PARSE__WORKERS", "1")
