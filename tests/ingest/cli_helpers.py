"""Run the real ``inhouse`` console script in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

INHOUSE = str(Path(sys.executable).parent / "inhouse")


def inhouse_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["INHOUSE_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def run_inhouse(
    args: list[str], data_dir: Path, timeout: float = 300, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INHOUSE, *args],
        env=inhouse_env(data_dir, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_json(args: list[str], data_dir: Path, **extra: str) -> tuple[int, Any]:
    done = run_inhouse([*args, "--json"], data_dir, **extra)
    assert done.stdout.strip(), f"no JSON output; stderr: {done.stderr[-2000:]}"
    return done.returncode, json.loads(done.stdout)


def index_snapshot(data_dir: Path, collection: str) -> tuple[dict[str, str], dict[str, tuple]]:
    """(chunk id -> document id) in Chroma and (document id -> manifest facts)."""
    from ingest.embed import EmbedderInfo
    from ingest.index import ChromaIndex, make_chroma_client
    from ingest.manifest import Manifest
    from ingest.settings import IngestSettings

    settings = IngestSettings(data_dir=data_dir)
    index = ChromaIndex(
        make_chroma_client(settings),
        EmbedderInfo("sentence-transformers/all-MiniLM-L6-v2", 384),
    )
    chunks = index.chunk_doc_ids(collection)
    manifest = Manifest.open(settings)
    try:
        rows = manifest.documents(collection)
    finally:
        manifest.close()
    return chunks, {r.id: (r.path, r.status, r.content_hash, r.chunk_count) for r in rows}
