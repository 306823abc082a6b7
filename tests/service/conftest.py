"""Shared fixtures for service tests: a scriptable Ollama server and the anyio backend."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from service.retrieval import Retriever
from tests.service.api_support import build_index, make_retriever
from tests.service.log_support import capture_all_logs
from tests.service.ollama_server import OllamaTestServer, Script, start_server


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    """The generated handbook corpus, indexed once per test module (a module may override)."""
    data_dir = tmp_path_factory.mktemp("index")
    build_index(data_dir)
    return make_retriever(data_dir)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def ollama_server() -> Iterator[OllamaTestServer]:
    """A fresh Ollama test server on a free loopback port; script it via ``.script``."""
    server = start_server(Script())
    try:
        yield server
    finally:
        server.stop()


class FormattedLog(logging.Handler):
    """Every record as the operator would read it: message, traceback (``exc_info``) and stack."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def service_log() -> Iterator[FormattedLog]:
    """Fully formatted log output of every logger (those that do not propagate included)."""
    yield from capture_all_logs(FormattedLog())
