"""The ``inhouse ingest`` / ``inhouse index status`` contract: JSON shapes and exit codes."""

from __future__ import annotations

from pathlib import Path

from tests.ingest.cli_helpers import run_inhouse, run_json


def make_docs(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "handbook.md").write_text("# Handbook\n\nThe office closes at 18:00 on Fridays.\n")
    (root / "faq.txt").write_text("Question: where is the printer? Answer: second floor.\n")
    return root


def test_ingest_json_report_and_status(tmp_path: Path) -> None:
    data = tmp_path / "data"
    docs = make_docs(tmp_path / "docs")
    code, report = run_json(["ingest", str(docs), "--collection", "ops"], data)
    assert code == 0
    assert report["collection"] == "ops"
    assert report["counts"] == {"indexed": 2, "unchanged": 0, "removed": 0, "failed": 0}
    assert {f["path"] for f in report["files"]} == {"handbook.md", "faq.txt"}
    assert all(f["status"] == "indexed" and f["chunks"] >= 1 for f in report["files"])

    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog")
    code, report = run_json(["ingest", str(docs), "--collection", "ops"], data)
    assert code == 1
    broken = [f for f in report["files"] if f["path"] == "broken.pdf"][0]
    assert broken["status"] == "failed" and broken["reason"] == "corrupt"
    assert report["counts"]["unchanged"] == 2

    code, status = run_json(["index", "status"], data)
    assert code == 0
    (ops,) = [c for c in status["collections"] if c["name"] == "ops"]
    assert ops["documents"] == ops["indexed"] == 2 and ops["failed"] == 1  # as in the API
    assert ops["chunks"] >= 2 and ops["failures_by_reason"] == {"corrupt": 1}
    assert ops["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    missing = run_inhouse(["ingest", str(tmp_path / "nope")], data)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    bad_name = run_inhouse(["ingest", str(tmp_path), "--collection", "Bad Name!"], data)
    assert bad_name.returncode == 2 and "invalid collection name" in bad_name.stderr
    no_args = run_inhouse(["ingest"], data)
    assert no_args.returncode == 2
