"""A data dir from before the shared database: commands refuse to start (exit 2, naming
``inhouse db upgrade``) until the upgrade imports its rows once (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.manifest import Manifest
from ingest.runs import RunStore
from ingest.settings import IngestSettings
from service.auth.keys import KeyStore
from service.auth.sessions import DatabaseSessionStore
from service.errors import AuthError
from tests.ingest.cli_helpers import run_inhouse, run_json
from tests.ingest.legacy_support import write_legacy_data_dir

LEGACY = ["manifest.sqlite3", "auth/keys.sqlite3", "auth/sessions.sqlite3"]


@pytest.mark.parametrize(
    "command",
    [
        ["ingest", "{docs}"],
        ["worker", "--sources", "{sources}"],
        ["serve", "--port", "1"],
        ["keys", "list"],
    ],
    ids=["ingest", "worker", "serve", "keys"],
)
def test_commands_refuse_a_legacy_data_dir(
    command: list[str], data_dir: Path, tmp_path: Path, db_url: str | None
) -> None:
    write_legacy_data_dir(data_dir)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n")
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f"sources:\n  - name: docs\n    paths: [{docs}]\n    schedule: '0 * * * *'\n"
    )
    args = [part.format(docs=docs, sources=sources) for part in command]
    done = run_inhouse(args, data_dir, timeout=120, INHOUSE_PORT="8000")
    assert done.returncode == 2, done.stderr[-2000:]
    message = " ".join(done.stderr.split())  # the console wraps long lines
    assert "run `inhouse db upgrade`" in message and "manifest.sqlite3" in message
    assert all((data_dir / name).exists() for name in LEGACY)  # nothing touched


def test_upgrade_imports_the_legacy_rows_once(data_dir: Path, db_url: str | None) -> None:
    legacy = write_legacy_data_dir(data_dir)
    code, status = run_json(["db", "status"], data_dir)
    assert code == 0 and status["up_to_date"] is False
    assert status["legacy_files"] == [str(data_dir / name) for name in LEGACY]

    code, result = run_json(["db", "upgrade"], data_dir)
    assert code == 0, result
    assert result["imported"] == {
        "documents": 2,
        "source_runs": 1,
        "source_run_failures": 2,
        "source_roots": 1,
        "source_schedule": 1,
        "api_keys": 2,
        "sessions": 1,
        "pending_logins": 1,
    }
    assert result["renamed"] == [str(data_dir / f"{name}.imported") for name in LEGACY]
    for name in LEGACY:
        assert not (data_dir / name).exists() and (data_dir / f"{name}.imported").is_file()
        assert not Path(f"{data_dir / name}-wal").exists()
    code, again = run_json(["db", "upgrade"], data_dir)
    assert (code, again["imported"], again["renamed"]) == (0, {}, [])
    code, status = run_json(["db", "status"], data_dir)
    assert status["up_to_date"] is True and status["legacy_files"] == []

    settings = IngestSettings(data_dir=data_dir)
    manifest = Manifest.open(settings)
    try:
        docs = {d.id: d for d in manifest.documents("main")}
        assert docs["d1"].mtime_ns == 1_764_000_000_123_456_789 and docs["d1"].size == 5000000000
        assert (docs["d1"].status, docs["d1"].chunk_count, docs["d1"].title) == (
            "indexed",
            12,
            "A report",
        )
        assert (docs["d2"].status, docs["d2"].error_code) == ("failed", "encrypted")
        runs = RunStore(manifest)
        run = runs.get("r1")
        assert run is not None and run.full is True and run.outcome == "partial"
        assert [f["path"] for f in run.failures] == ["z.pdf", "a.pdf"]  # order kept
        assert [(r.source, r.root) for r in runs.roots()] == [("docs", "/docs")]
        sessions = DatabaseSessionStore(manifest.db)
        session = sessions.by_token(legacy.session_token)
        assert session is not None and session.groups == ("hr",) and session.name == "Uma"
    finally:
        manifest.close()
    keys = KeyStore(data_dir)
    try:
        assert keys.verify(legacy.api_key).name == "old"  # keys issued before still work
        with pytest.raises(AuthError, match="revoked"):
            keys.verify(legacy.revoked_key)
    finally:
        keys.close()
    assert os.environ.get("INHOUSE_DATABASE_URL") == db_url
