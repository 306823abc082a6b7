"""The ingest speed paths: what they skip, and that the output stays the same."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingest.chunk import Chunker
from ingest.documents import ParsedDocument, ParsedElement
from ingest.embed import Embedder
from ingest.parse import parse_file
from ingest.settings import ChunkSettings, ParseSettings


@pytest.mark.parametrize("name", ["txt", "md", "html", "docx", "eml"])
def test_no_language_detection(
    corpus: dict[str, Path], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """unstructured's langdetect pass (40% of a short text's parse) is never run."""
    from unstructured.partition.common import lang

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("language detection ran")

    monkeypatch.setattr(lang, "detect_languages", refuse)
    document = parse_file(corpus[name], ParseSettings())
    assert document.elements


def test_workers_start_without_the_pdfminer_stack() -> None:
    """A worker's warm-up imports the text partitioner only (the PDF one pulls OpenCV and
    onnxruntime); a PDF with a text layer is then read without it."""
    script = (
        "import sys\n"
        "from ingest.parser_env import keep_torch_out\n"
        "keep_torch_out()\n"
        "from ingest.parse import warm_up\n"
        "warm_up()\n"
        "print(sorted(m for m in ('unstructured.partition.pdf', 'unstructured.partition.docx',"
        " 'cv2', 'unstructured.partition.text') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=True
    )
    assert done.stdout.split("\n")[-2] == "['unstructured.partition.text']"


def test_chunker_measures_each_text_once(embedder: Embedder) -> None:
    calls: list[str] = []

    def tokenize(text: str) -> list[str]:
        calls.append(text)
        return embedder.tokenize(text)

    rows = ["Account Amount Currency"] + [f"Account-{i} {i * 13} EUR" for i in range(150)]
    doc = ParsedDocument(
        "xlsx",
        (ParsedElement("Ledger", "Title", 1), ParsedElement("\n".join(rows), "Table", 1)),
    )
    chunker = Chunker(ChunkSettings(), tokenize, embedder.max_tokens)
    first = chunker.chunk(doc, "ledger.xlsx")
    assert len(calls) == len(set(calls))  # every string tokenized once
    measured = len(calls)
    again = Chunker(ChunkSettings(), embedder.tokenize, embedder.max_tokens).chunk(
        doc, "ledger.xlsx"
    )
    assert [c.body for c in again] == [c.body for c in first]  # the cache changes nothing
    assert chunker.chunk(doc, "ledger.xlsx") == first and len(calls) == measured
