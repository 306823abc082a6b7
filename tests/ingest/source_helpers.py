"""Shared fixtures for the re-index worker tests: generated corpora, sources files, checks."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from tests.ingest.cli_helpers import index_snapshot

WORDS = "revenue margin supplier contract audit payroll invoice budget forecast policy".split()


def write_doc(root: Path, i: int, version: int, paragraphs: int = 6) -> Path:
    body = [
        " ".join(WORDS[(i + j + k + version) % len(WORDS)] for k in range(60)) + "."
        for j in range(paragraphs)
    ]
    path = root / f"doc{i:03d}.md"
    path.write_text(f"# Document {i} version {version}\n\n" + "\n\n".join(body))
    return path


def write_corpus(root: Path, files: int, version: int = 0) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        write_doc(root, i, version)


def write_sources(path: Path, *entries: dict[str, str]) -> Path:
    lines = ["sources:"]
    for entry in entries:
        lines.append(f"  - name: {entry['name']}")
        lines.append(f"    paths: [{entry['path']}]")
        lines.append(f"    collection: {entry.get('collection', 'main')}")
        lines.append(f'    schedule: "{entry.get("schedule", "0 * * * *")}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def runs_of(data_dir: Path, source: str) -> list[dict[str, object]]:
    """Run rows of one source, oldest first (read straight from the SQLite database)."""
    path = data_dir / "inhouse.sqlite3"
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(
            "SELECT * FROM source_runs WHERE source = ? ORDER BY started_at", (source,)
        ).fetchall()
    except sqlite3.OperationalError as exc:  # not created yet by the process under test
        assert "no such table" in str(exc)
        rows = []
    finally:
        conn.close()
    return [dict(row) for row in rows]


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def assert_index_matches_files(data_dir: Path, collection: str, docs: Path) -> None:
    """Every file indexed exactly once: manifest rows = files, chunks = manifest chunk counts."""
    chunks, manifest = index_snapshot(data_dir, collection)
    files = sorted(p.name for p in docs.iterdir())
    assert sorted(facts[0] for facts in manifest.values()) == files
    assert {facts[1] for facts in manifest.values()} == {"indexed"}
    per_doc: dict[str, int] = {}
    for doc_id in chunks.values():
        per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
    assert per_doc == {doc_id: facts[3] for doc_id, facts in manifest.items()}
