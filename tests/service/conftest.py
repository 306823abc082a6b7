"""Shared fixtures for service tests: a scriptable Ollama server and the anyio backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.service.ollama_server import OllamaTestServer, Script, start_server


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
