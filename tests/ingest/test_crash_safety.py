"""kill -9 during a first run or during an update, then a rerun, converges to one clean run.

Kills are placed on progress, never on wall time: either from outside once the manifest shows
some documents done, or from inside the run at the moment a batch's new chunks are about to
be written (the update path's crash window: a document must keep its old chunks until the
new ones are stored). Runs write small batches (``BATCH_DOCS``) so that a kill lands between
batches or inside one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.embed import EmbedderInfo
from ingest.index import META_DOC_HASH, ChromaIndex, make_chroma_client
from ingest.jobs import file_hash
from ingest.lexical import chunk_key
from ingest.settings import IngestSettings
from tests.ingest.cli_helpers import index_snapshot, inhouse_env, run_inhouse
from tests.ingest.source_helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

WORDS = "revenue margin supplier contract audit payroll invoice budget forecast policy".split()
FILES = 16
COLLECTION = "crash"

# Runs `inhouse ingest` in-process with batches of at most BATCH_DOCS small documents (so
# that a run of FILES documents writes several batches); with KILL_AT_UPSERT, ChromaIndex.upsert
# is wrapped: on its Nth call (before anything of that batch reaches Chroma) the documents of
# the earlier calls are noted in KILL_NOTE and the whole process group is killed, as kill -9
# from outside would.
BATCH_DOCS = 3
IN_PROCESS = f"""
import json, os, signal, sys
import ingest.batching
from ingest.index import META_DOCUMENT_ID, ChromaIndex
from service.cli import main

ingest.batching.BATCH_DOCS = {BATCH_DOCS}
written = []
real_upsert = ChromaIndex.upsert

def upsert(self, collection, chunks, vectors):
    if len(written) + 1 == int(os.environ["KILL_AT_UPSERT"]):
        with open(os.environ["KILL_NOTE"], "w") as note:
            json.dump(sorted(d for batch in written for d in batch), note)
        os.killpg(os.getpgid(0), signal.SIGKILL)
    real_upsert(self, collection, chunks, vectors)
    written.append({{c.metadata[META_DOCUMENT_ID] for c in chunks}})

if os.environ.get("KILL_AT_UPSERT"):
    ChromaIndex.upsert = upsert
sys.exit(main(sys.argv[1:]))
"""


def write_corpus(root: Path, version: int) -> None:
    """Every file's text changes from one version to the next (the word order shifts)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(FILES):
        paragraphs = [
            " ".join(WORDS[(i + j + k + version) % len(WORDS)] for k in range(60)) + "."
            for j in range(6)
        ]
        text = f"# Document {i} version {version}\n\n" + "\n\n".join(paragraphs)
        if version and i % 2:
            text += f"\n\nAmendment {version}: clause {i} changed."
        (root / f"doc{i:03d}.md").write_text(text)


def ingest(data: Path, docs: Path) -> None:
    done = run_inhouse(["ingest", str(docs), "--collection", COLLECTION, "--json"], data,
                       timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["counts"]["failed"] == 0


def indexed_with(data: Path, hashes: set[str]) -> int:
    """Manifest rows of the collection that are ``indexed`` at one of ``hashes``."""
    path = data / "inhouse.sqlite3"
    if not path.exists():
        return 0
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT content_hash FROM documents WHERE status = 'indexed' AND collection = ?",
            (COLLECTION,),
        ).fetchall()
    except sqlite3.OperationalError as exc:  # the run under test has not created it yet
        assert "no such table" in str(exc)
        rows = []
    finally:
        conn.close()
    return sum(1 for (digest,) in rows if digest in hashes)


def chunk_versions(data: Path) -> dict[str, set[str]]:
    """Document id -> content hashes of the chunks Chroma holds for it."""
    index = ChromaIndex(
        make_chroma_client(IngestSettings(data_dir=data)),
        EmbedderInfo("sentence-transformers/all-MiniLM-L6-v2", 384),
    )
    _, manifest = index_snapshot(data, COLLECTION)
    return {
        doc_id: {str(c[META_DOC_HASH]) for c in index.document_chunks(COLLECTION, doc_id)}
        for doc_id in manifest
    }


def start_ingest(command: list[str], data: Path, docs: Path, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*command, "ingest", str(docs), "--collection", COLLECTION, "--json"],
        env=inhouse_env(data, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def kill_after_progress(data: Path, docs: Path, hashes: set[str], done: int) -> None:
    """Start a run, SIGKILL its process group once ``done`` files reached ``hashes``."""
    proc = start_ingest([sys.executable, "-c", IN_PROCESS], data, docs)
    try:
        wait_for(lambda: indexed_with(data, hashes) >= done or proc.poll() is not None, 600,
                 f"{done} files indexed")  # fmt: skip
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def assert_converged(data: Path, clean: tuple[dict[str, str], dict[str, tuple]]) -> None:
    chunks, docs = index_snapshot(data, COLLECTION)
    clean_chunks, clean_docs = clean
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
    assert index.generation(COLLECTION).startswith("c:")  # settled by the rerun
    return LexicalIndexes(data / "lexical").for_collection(index.collection(COLLECTION)).keys()


def assert_every_document_findable(data: Path, old: set[str], new: set[str]) -> int:
    """Each document holds chunks of its old or new version only; returns how many are new."""
    versions = chunk_versions(data)
    assert len(versions) == FILES
    empty = [doc for doc, hashes in versions.items() if not hashes]
    assert empty == [], f"{len(empty)} documents lost every chunk in the killed update"
    assert all(hashes <= old | new for hashes in versions.values())
    return sum(1 for hashes in versions.values() if hashes <= new)


def test_killed_first_run_and_killed_updates_converge(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, version=0)
    old = {file_hash(p) for p in docs.iterdir()}
    clean = tmp_path / "clean"
    ingest(clean, docs)
    clean_v0 = index_snapshot(clean, COLLECTION)

    # 1. First run (empty data folder) killed after a few files.
    first = tmp_path / "first"
    kill_after_progress(first, docs, old, done=3)
    assert 0 < indexed_with(first, old) < FILES  # partly written before the rerun
    ingest(first, docs)
    assert_converged(first, clean_v0)
    killed_inside = tmp_path / "inside"
    shutil.copytree(first, killed_inside)  # a second complete version-0 index

    # 2. Update (every file edited) killed from outside after a few files.
    write_corpus(docs, version=1)
    new = {file_hash(p) for p in docs.iterdir()}
    assert not old & new
    ingest(clean, docs)
    clean_v1 = index_snapshot(clean, COLLECTION)
    kill_after_progress(first, docs, new, done=3)
    updated = assert_every_document_findable(first, old, new)
    assert 0 < indexed_with(first, new) < FILES and 0 < updated < FILES
    ingest(first, docs)
    assert_converged(first, clean_v1)

    # 3. Update killed inside a batch's write (its 2nd): its documents keep their old chunks.
    note = tmp_path / "written.json"
    proc = start_ingest([sys.executable, "-c", IN_PROCESS], killed_inside, docs,
                        KILL_AT_UPSERT="2", KILL_NOTE=str(note))  # fmt: skip
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-3000:]
    written = len(json.loads(note.read_text()))  # the first batch's documents
    assert 0 < written <= BATCH_DOCS
    assert indexed_with(killed_inside, new) == written
    assert assert_every_document_findable(killed_inside, old, new) == written
    ingest(killed_inside, docs)
    assert_converged(killed_inside, clean_v1)
