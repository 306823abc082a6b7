"""A queued run's ``discover`` item: list the source's files and classify them against the
manifest (``ingest.queue_worker`` adds what this returns to the queue)."""

from __future__ import annotations

from pathlib import Path

from ingest import bundles
from ingest.discover import DiscoveredFile, discover
from ingest.index import document_id
from ingest.pipeline import IngestPipeline
from ingest.queue_records import NewItem, QueueRun


def list_run(pipeline: IngestPipeline, run: QueueRun) -> tuple[list[NewItem], int]:
    """The items a run needs (an ``index`` item per file to (re)index, a ``remove`` item per
    vanished document, refused paths as settled results) and its unchanged file count: a
    settled row with the same size and mtime is unchanged. Results are counted as the
    in-process run reports them: an unchanged container's members too (unchanged, or
    ``member`` items for those that failed), a file that failed and is unchanged as failed."""
    collection = run.collection
    paths = [Path(p) for p in run.spec["paths"]]
    found: list[DiscoveredFile] = []
    refused: list[DiscoveredFile] = []
    dir_roots: list[str] = []
    for path in paths:
        for file in discover(
            path,
            include=run.spec.get("include", ()),
            exclude=run.spec.get("exclude", ()),
            data_dir=pipeline.settings.data_dir,
        ):
            (refused if file.refused else found).append(file)
        if path.expanduser().resolve().is_dir():
            dir_roots.append(str(path.expanduser().resolve()))
    manifest = pipeline.manifest
    seen_ids = {document_id(collection, str(f.root), f.relative) for f in found + refused}
    seen_paths = {(str(f.root), f.relative) for f in found + refused}
    new: list[NewItem] = []
    for file in refused:
        result = pipeline.writer.refuse(collection, file, file.refused or "")
        new.append(
            NewItem(
                "index",
                result.document_id,
                result.root,
                result.path,
                "failed",
                result.reason,
                result.message,
            )
        )
    unchanged = 0
    for file in found:
        doc_id = document_id(collection, str(file.root), file.relative)
        record = manifest.get(doc_id)
        if (
            not run.full
            and record is not None
            and record.status in ("indexed", "failed")
            and (record.size, record.mtime_ns) == (file.size, file.mtime_ns)
        ):
            for result in bundles.unchanged_results(manifest, collection, record):
                if result.status == "unchanged":
                    unchanged += 1
                else:  # failed last time, unchanged since: reported failed again
                    kind = "index" if result.document_id == doc_id else "member"
                    new.append(
                        NewItem(
                            kind,
                            result.document_id,
                            result.root,
                            result.path,
                            result.status,
                            result.reason,
                            result.message,
                        )
                    )
            continue
        new.append(NewItem("index", doc_id, str(file.root), file.relative))
    for root in dir_roots:
        for record in manifest.documents(collection, root=root):
            if record.id not in seen_ids and not bundles.is_member(
                record.root, record.path, seen_paths
            ):
                new.append(NewItem("remove", record.id, record.root, record.path))
    return new, unchanged
