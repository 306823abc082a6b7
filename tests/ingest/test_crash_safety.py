"""kill -9 at any moment, then a rerun, converges to the index of one clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ingest.lexical import chunk_key
from tests.ingest.cli_helpers import INHOUSE, index_snapshot, inhouse_env, run_json

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

WORDS = "revenue margin supplier contract audit payroll invoice budget forecast policy".split()


def write_corpus(root: Path, version: int, files: int = 24) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        paragraphs = [
            " ".join(WORDS[(i + j + k + version) % len(WORDS)] for k in range(60)) + "."
            for j in range(6)
        ]
        text = f"# Document {i} version {version}\n\n" + "\n\n".join(paragraphs)
        if version and i % 2:  # the second version edits half the files
            text += f"\n\nAmendment {version}: clause {i} changed."
        (root / f"doc{i:03d}.md").write_text(text)


def killed_run(data: Path, docs: Path, after_s: float) -> None:
    proc = subprocess.Popen(
        [INHOUSE, "ingest", str(docs), "--collection", "crash", "--json"],
        env=inhouse_env(data),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(after_s)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def assert_converged(data: Path, clean: Path) -> None:
    chunks, docs = index_snapshot(data, "crash")
    clean_chunks, clean_docs = index_snapshot(clean, "crash")
    assert docs == clean_docs
    assert chunks == clean_chunks  # same ids: no duplicates, no orphans, nothing missing
    assert {status for _, status, _, _ in docs.values()} == {"indexed"}
    per_doc: dict[str, int] = {}
    for doc_id in chunks.values():
        per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
    assert per_doc == {doc_id: facts[3] for doc_id, facts in docs.items()}
    assert lexical_keys(data) == {chunk_key(cid) for cid in chunks}  # findable lexically


def lexical_keys(data: Path) -> set[int]:
    """Chunks in this host's lexical mirror, as the rerun left it (no sync here)."""
    from ingest.embed import EmbedderInfo
    from ingest.index import ChromaIndex, make_chroma_client
    from ingest.lexical import LexicalIndexes
    from ingest.settings import IngestSettings

    index = ChromaIndex(
        make_chroma_client(IngestSettings(data_dir=data)),
        EmbedderInfo("sentence-transformers/all-MiniLM-L6-v2", 384),
    )
    assert index.generation("crash").startswith("c:")  # settled by the rerun
    return LexicalIndexes(data / "lexical").for_collection(index.collection("crash")).keys()


def test_kill_during_first_run_and_update_converges(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, version=0)
    clean = tmp_path / "clean"
    started = time.monotonic()
    code, _ = run_json(["ingest", str(docs), "--collection", "crash"], clean)
    clean_wall = time.monotonic() - started
    assert code == 0

    for fraction in (0.4, 0.8):
        data = tmp_path / f"killed-{fraction}"
        killed_run(data, docs, clean_wall * fraction)
        code, report = run_json(["ingest", str(docs), "--collection", "crash"], data)
        assert code == 0, report
        assert_converged(data, clean)

    # An update run (half the files edited) killed midway converges to a clean update.
    write_corpus(docs, version=1)
    code, _ = run_json(["ingest", str(docs), "--collection", "crash"], clean)
    assert code == 0
    data = tmp_path / "killed-0.6"
    started = time.monotonic()
    killed_run(data, docs, clean_wall * 0.6)
    code, report = run_json(["ingest", str(docs), "--collection", "crash"], data)
    assert code == 0, report
    assert_converged(data, clean)
