"""Storing a container (archive, e-mail with attachments) and its members as documents.

Mapping. A member is a document of its own: its manifest row has the container's root
and the path ``<container path>/<member name>`` (``mail/q3.eml/report.pdf``,
``docs.zip/dir/inner.tar/notes.txt``), so its document id is ``document_id(collection,
root, that path)`` like any file's, its chunks' ``source`` is that path, and no real file
can have it (the container is a file, not a folder). Its ``content_hash`` is the SHA-256
of the member's bytes; its size is the member's, its mtime the container's.

Incremental runs. Only the container is discovered, hashed and compared: unchanged, it is
not parsed and its member rows stay (``emit_unchanged`` reports them unchanged too); a
member row is never stale while its container is discovered (``is_member``). Changed,
the container is parsed again (one parser job, all members), and a member whose bytes
are unchanged (same hash, already indexed) is not embedded again.

Crash safety: the pipeline's numbered rules, with the container's row as the bundle's
ledger. (1) the container row goes ``pending`` before any member is touched; (2) each
member follows rules 1-4 on its own row; (3) members of the previous version that are
gone are removed (chunks, then row); (4) the container itself is stored by rules 1-4,
which ends with its row ``indexed``. A crash anywhere leaves the container ``pending``,
so the next run parses it again and converges; members already done are unchanged then.
Removal: a container that disappears leaves its own row and all member rows stale.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ingest.containers import CONTAINER_TYPES
from ingest.discover import DiscoveredFile
from ingest.documents import ParsedDocument, ParsedMember
from ingest.errors import FileRejected, rejection_from_code
from ingest.index import document_id
from ingest.manifest import DocumentRecord, Manifest
from ingest.report import FileResult

if TYPE_CHECKING:
    from ingest.writer import DocumentWriter


def is_member(root: str, path: str, discovered: set[tuple[str, str]]) -> bool:
    """True when ``path`` lies inside a container discovered under ``root``."""
    return any(
        (root, path[:i]) in discovered for i, char in enumerate(path) if char == "/" and i > 0
    )


def member_records(
    manifest: Manifest, collection: str, root: str, path: str
) -> list[DocumentRecord]:
    """Rows of the members of the container at ``root``/``path``."""
    return manifest.members(collection, root, path)


def member_results(manifest: Manifest, collection: str, result: FileResult) -> list[FileResult]:
    """The members' results that go with ``result`` when its container was not parsed
    (unchanged, or failed before parsing): each member row as it stands."""
    if result.file_type not in CONTAINER_TYPES or result.status == "indexed":
        return []
    return [
        _record_result(record)
        for record in member_records(manifest, collection, result.root, result.path)
    ]


def unchanged_results(
    manifest: Manifest, collection: str, record: DocumentRecord
) -> list[FileResult]:
    """What a run reports for a settled file found unchanged by its size and mtime: its
    row's result and, for a container, its members' (``emit_unchanged``'s results)."""
    own = _record_result(record)
    return [own, *member_results(manifest, collection, own)]


def emit_unchanged(
    manifest: Manifest, collection: str, emit: Callable[[FileResult], None]
) -> Callable[[FileResult], None]:
    """``emit`` that also reports the members of an unchanged container as unchanged: the
    members first, then the container, the order ``store_with_members`` reports a parsed
    one in (a queue worker closes the container's item when its result comes)."""

    def emit_all(result: FileResult) -> None:
        for member in member_results(manifest, collection, result):
            emit(member)
        emit(result)

    return emit_all


def store_with_members(
    writer: DocumentWriter,
    collection: str,
    job: Any,
    parsed: ParsedDocument | FileRejected,
    *,
    full: bool,
    busy_cores: Callable[[], int],
) -> Iterator[FileResult]:
    """Store a parsed file and, for a container, its members (see the module docstring)."""
    file: DiscoveredFile = job.file
    had_members = job.record is not None and job.record.file_type in CONTAINER_TYPES
    members = parsed.members if isinstance(parsed, ParsedDocument) else ()
    if not members and not had_members:
        yield writer.store(collection, job, parsed, busy_cores=busy_cores)
        return
    manifest = writer.manifest
    previous = member_records(manifest, collection, str(file.root), file.relative)
    record: DocumentRecord | None = job.record
    kept = record is not None and record.status == "indexed"
    if isinstance(parsed, FileRejected) and kept:  # the old version and its members stay
        yield writer.store(collection, job, parsed, busy_cores=busy_cores)
        return
    manifest.begin_document(  # (1) the bundle's ledger
        doc_id=job.doc_id,
        collection=collection,
        root=str(file.root),
        path=file.relative,
        size=file.size,
        mtime_ns=file.mtime_ns,
        pending_hash=job.content_hash,
        embedder=writer.embedder.info.name,
    )
    current: set[str] = set()
    for member in members:  # (2)
        member_job = _member_job(manifest, collection, job, member)
        current.add(member_job.doc_id)
        yield _store_member(writer, collection, member_job, member, full, busy_cores)
    for record in previous:  # (3)
        if record.id not in current:
            yield writer.remove(record)
    yield writer.store(collection, job, parsed, busy_cores=busy_cores)  # (4)


def _member_job(manifest: Manifest, collection: str, job: Any, member: ParsedMember) -> Any:
    file: DiscoveredFile = job.file
    relative = f"{file.relative}/{member.name}"
    doc_id = document_id(collection, str(file.root), relative)
    member_file = DiscoveredFile(
        root=file.root, relative=relative, size=member.size, mtime_ns=file.mtime_ns
    )
    return dataclasses.replace(
        job,
        file=member_file,
        doc_id=doc_id,
        content_hash=member.content_hash,
        record=manifest.get(doc_id),
    )


def _store_member(
    writer: DocumentWriter,
    collection: str,
    job: Any,
    member: ParsedMember,
    full: bool,
    busy_cores: Callable[[], int],
) -> FileResult:
    record: DocumentRecord | None = job.record
    if (
        not full
        and record is not None
        and record.status in ("indexed", "failed")
        and record.content_hash == member.content_hash
        and not (record.status == "failed" and member.document is not None)
    ):
        if (record.size, record.mtime_ns) != (job.file.size, job.file.mtime_ns):
            writer.manifest.touch(record.id, size=job.file.size, mtime_ns=job.file.mtime_ns)
        return _record_result(record)
    if member.document is None:
        error = rejection_from_code(member.error_code or "parse_error", member.error_message or "")
        return writer.fail(collection, job, error)
    return writer.store(collection, job, member.document, busy_cores=busy_cores)


def _record_result(record: DocumentRecord) -> FileResult:
    failed = record.status == "failed"
    return FileResult(
        path=record.path,
        root=record.root,
        document_id=record.id,
        status="failed" if failed else "unchanged",
        reason=record.error_code if failed else None,
        message=f"{record.error_message} (unchanged since the last attempt)" if failed else None,
        file_type=record.file_type,
        chunks=record.chunk_count,
        pages=record.page_count,
        bytes=record.size,
    )
