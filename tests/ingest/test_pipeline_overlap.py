"""The pipeline parses the next file while it embeds the previous one, and gives the
encoder only the cores the parsers leave free while they work."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ingest.parser_load
import ingest.writer
from ingest.documents import ParsedDocument, ParsedElement
from ingest.embed import Embedder
from ingest.errors import FileRejected
from ingest.pipeline import IngestPipeline
from ingest.settings import IngestSettings

FIRST, SECOND = "a.md", "b.md"


class GatedParser:
    """Parses in-process; the second file takes until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.second_started = threading.Event()

    def parse_many(
        self, items: Iterable[tuple[Any, Path]], *, stop: Callable[[], bool] | None = None
    ) -> Iterator[tuple[Any, ParsedDocument | FileRejected]]:
        for key, path in items:
            if path.name == SECOND:
                self.second_started.set()
                assert self.release.wait(10), "the first file was never embedded"
            paragraphs = [p for p in path.read_text().split("\n\n") if p.strip()]
            elements = tuple(ParsedElement(p, "NarrativeText", 1) for p in paragraphs)
            yield key, ParsedDocument("md", elements, page_count=1)

    def close(self) -> None:
        pass


class RecordingEmbedder(Embedder):
    """The real encoder; records the thread count asked for per call (without applying it)."""

    def __init__(self, shared: Embedder, parser: GatedParser) -> None:
        super().__init__()
        self._model = shared.model
        self.info = shared.info
        self.threads = 2
        self.parser = parser
        self.calls: list[tuple[str, int | None]] = []
        self.second_parsed_during_first = False

    def encode(self, texts: list[str], *, threads: int | None = None) -> np.ndarray:
        doc = FIRST if any("alpha" in t for t in texts) else SECOND
        self.calls.append((doc, threads))
        first_calls = sum(1 for d, _ in self.calls if d == FIRST)
        if doc == FIRST and first_calls == 1:
            self.second_parsed_during_first = self.parser.second_started.wait(10)
        if doc == FIRST and first_calls == 2:
            self.parser.release.set()  # the parser was busy during both calls
        return super().encode(texts)


def write(path: Path, word: str, paragraphs: int) -> None:
    text = "\n\n".join(
        f"Paragraph {i} about {word} and the budget review." for i in range(paragraphs)
    )
    path.write_text(text)


def two_documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of two 12-paragraph documents, chunked small: many encode calls each."""
    monkeypatch.setenv("INHOUSE_CHUNK__TOKENS", "32")
    monkeypatch.setenv("INHOUSE_CHUNK__OVERLAP", "0")
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs / FIRST, "alpha", 12)
    write(docs / SECOND, "beta", 12)
    return docs


def test_parsing_overlaps_embedding_and_threads_follow_the_parsers(
    data_dir: Path, embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest.writer, "ENCODE_SLICE", 1)  # one chunk per encode call
    docs = two_documents(tmp_path, monkeypatch)
    parser = GatedParser()
    recorder = RecordingEmbedder(embedder, parser)
    settings = IngestSettings()
    pipe = IngestPipeline(settings, embedder=recorder, parser_factory=lambda _s, _n: parser)
    try:
        report = pipe.run([docs], "overlap", workers=1)
    finally:
        pipe.close()
    assert report.counts()["indexed"] == 2
    assert recorder.second_parsed_during_first  # the parser did not wait for the embedder
    first_calls = [t for d, t in recorder.calls if d == FIRST]
    second_calls = [t for d, t in recorder.calls if d == SECOND]
    assert len(first_calls) > 2 and len(second_calls) > 1
    assert first_calls[1] == 1  # the parser holds one of the two cores
    assert second_calls[-1] is None  # parsing done: every core again


def test_an_idle_parser_process_leaves_every_core_to_the_encoder(
    data_dir: Path, embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that holds a file but barely uses the CPU (many small files) is not reserved
    a core: the encoder's threads follow the workers' measured CPU, not their busy flag."""
    monkeypatch.setattr(ingest.writer, "ENCODE_SLICE", 1)
    monkeypatch.setattr(ingest.parser_load, "WINDOW_S", 0.0)  # measure on every call
    docs = two_documents(tmp_path, monkeypatch)
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    parser = GatedParser()
    parser.worker_pids = [idle.pid]  # type: ignore[attr-defined]
    recorder = RecordingEmbedder(embedder, parser)
    pipe = IngestPipeline(IngestSettings(), embedder=recorder, parser_factory=lambda _s, _n: parser)
    try:
        report = pipe.run([docs], "idle-parser", workers=1)
    finally:
        pipe.close()
        idle.kill()
        idle.wait()
    assert report.counts()["indexed"] == 2
    assert recorder.second_parsed_during_first  # the parser was at work during the first file
    first_calls = [t for d, t in recorder.calls if d == FIRST]
    assert len(first_calls) > 2 and all(t is None for t in first_calls)
