"""Discovery stays inside its root: symlinks out, the data dir, chains, swaps after discovery."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.discover import DiscoveredFile, discover, still_inside
from ingest.embed import Embedder
from ingest.pipeline import IngestPipeline, ParserFactory
from ingest.settings import IngestSettings
from ingest.status import index_status

SECRET = "the owner-only reasoning log says zebracorn"


@pytest.fixture()
def layout(tmp_path: Path) -> dict[str, Path]:
    """A source folder with links to a file, a folder, the data dir, and a chain, all outside."""
    root = tmp_path / "docs"
    (root / "inside").mkdir(parents=True)
    (root / "inside" / "ok.md").write_text("# Parking\n\nThe garage opens at 6:30.\n")
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "secret.txt").write_text(SECRET + "\n")
    (outside / "folder" / "more.txt").write_text(SECRET + " again\n")
    data = tmp_path / "data"
    (data / "reasoning").mkdir(parents=True)
    (data / "reasoning" / "reasoning-2026-01-01.jsonl").write_text(SECRET + "\n")
    (root / "file-link.txt").symlink_to(outside / "secret.txt")
    (root / "dir-link").symlink_to(outside / "folder")
    (root / "data-link").symlink_to(data)
    (root / "data-file.txt").symlink_to(data / "reasoning" / "reasoning-2026-01-01.jsonl")
    (root / "hop2.txt").symlink_to(outside / "secret.txt")  # a chain: hop1 -> hop2 -> out
    (root / "hop1.txt").symlink_to(root / "hop2.txt")
    (root / "inside-link.md").symlink_to(root / "inside" / "ok.md")  # stays inside: followed
    (root / "inside" / "loop").symlink_to(root)  # a loop back to the root: visited once
    return {"root": root, "outside": outside, "data": data}


def by_path(found: list[DiscoveredFile]) -> dict[str, DiscoveredFile]:
    return {f.relative: f for f in found}


def test_links_out_of_the_root_are_refused_not_read(layout: dict[str, Path]) -> None:
    found = by_path(list(discover(layout["root"], data_dir=layout["data"])))
    refused = {p for p, f in found.items() if f.refused}
    assert refused == {
        "file-link.txt",
        "dir-link",
        "data-link",
        "data-file.txt",
        "hop1.txt",
        "hop2.txt",
    }
    assert {p for p, f in found.items() if not f.refused} == {"inside/ok.md", "inside-link.md"}
    assert "dir-link/more.txt" not in found  # the outside folder is not entered
    assert "data directory" in (found["data-file.txt"].refused or "")


def test_the_data_dir_inside_a_root_is_never_read(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    data = root / "inhouse-data"
    (data / "audit").mkdir(parents=True)
    (data / "audit" / "audit-2026-01-01.jsonl").write_text(SECRET)
    (root / "policy.md").write_text("# Policy\n\nText.\n")
    found = by_path(list(discover(root, data_dir=data)))
    assert found["inhouse-data"].refused
    assert not found["policy.md"].refused
    assert not any(p.startswith("inhouse-data/") for p in found)


@pytest.mark.parametrize("staging", ["uploads", "eval"])
def test_a_staging_area_inside_the_data_dir_is_readable(tmp_path: Path, staging: str) -> None:
    """Uploads and eval sets are documents Inhouse wrote itself into its data dir."""
    data = tmp_path / "data"
    area = data / staging / "main"
    area.mkdir(parents=True)
    (area / "report.md").write_text("# Report\n")
    (area / "sneaky.txt").symlink_to(data / "keys.sqlite3")
    (data / "keys.sqlite3").write_text(SECRET)
    found = by_path(list(discover(area, data_dir=data)))
    assert not found["report.md"].refused
    assert found["sneaky.txt"].refused
    assert by_path(list(discover(data / staging, data_dir=data)))["."].refused


def test_a_file_swapped_for_a_link_after_discovery_is_caught(layout: dict[str, Path]) -> None:
    root = layout["root"]
    file = by_path(list(discover(root, data_dir=layout["data"])))["inside/ok.md"]
    assert still_inside(file, layout["data"]) is None
    (root / "inside" / "ok.md").unlink()
    (root / "inside" / "ok.md").symlink_to(layout["outside"] / "secret.txt")
    assert "outside" in (still_inside(file, layout["data"]) or "")


@pytest.fixture()
def pipeline(
    data_dir: Path, embedder: Embedder, shared_parsers: ParserFactory
) -> Iterator[IngestPipeline]:
    pipe = IngestPipeline(IngestSettings(), embedder=embedder, parser_factory=shared_parsers)
    yield pipe
    pipe.close()


def all_text(pipe: IngestPipeline, collection: str) -> str:
    got = pipe.index.collection(collection).get(include=["documents"])
    return "\n".join(got["documents"] or [])


def test_ingest_reports_outside_root_and_indexes_nothing_from_outside(
    pipeline: IngestPipeline, layout: dict[str, Path], data_dir: Path
) -> None:
    report = pipeline.run([layout["root"]], "main")
    reasons = {r.path: r.reason for r in report.files if r.status == "failed"}
    assert reasons == dict.fromkeys(
        ["file-link.txt", "dir-link", "data-link", "data-file.txt", "hop1.txt", "hop2.txt"],
        "outside_root",
    )
    assert report.failures_by_reason() == {"outside_root": 6}
    assert "zebracorn" not in all_text(pipeline, "main")
    assert "garage" in all_text(pipeline, "main")
    status = index_status(pipeline.settings)
    assert status["collections"][0]["failures_by_reason"] == {"outside_root": 6}


def test_a_file_indexed_before_becoming_a_link_out_loses_its_chunks(
    pipeline: IngestPipeline, tmp_path: Path
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.md").write_text("# Notes\n\nzebracorn facts that were fine to index.\n")
    assert pipeline.run([root], "main").counts()["indexed"] == 1
    (tmp_path / "secret.txt").write_text(SECRET)
    os.replace(root / "a.md", tmp_path / "old.md")
    (root / "a.md").symlink_to(tmp_path / "secret.txt")
    report = pipeline.run([root], "main")
    assert [(r.path, r.reason) for r in report.files] == [("a.md", "outside_root")]
    assert all_text(pipeline, "main") == ""


def test_failure_messages_name_paths_relative_to_the_root(
    data_dir: Path, embedder: Embedder, tmp_path: Path
) -> None:
    """A parser message quoting the server's absolute path is reported relative to the root."""
    from ingest.errors import ParseError

    class QuotingParser:
        def parse_many(self, items: Any, *, stop: Any = None) -> Iterator[tuple[Any, Any]]:
            for job, path in items:
                yield job, ParseError(f"cannot parse {path}: bad xref in {path.parent}")

        def close(self) -> None:
            pass

    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.pdf").write_bytes(b"%PDF-1.4 broken")
    pipe = IngestPipeline(
        IngestSettings(), embedder=embedder, parser_factory=lambda s, w: QuotingParser()
    )
    try:
        (result,) = pipe.run([root], "main").files
    finally:
        pipe.close()
    assert result.reason == "parse_error"
    assert result.message == "cannot parse sub/a.pdf: bad xref in sub"
    assert str(tmp_path) not in (result.message or "")
