"""The records of one run's files: a job to parse, a document ready to embed, their results.

``Job``: a discovered file that needs parsing (new or changed), with its manifest row as
the run found it. ``Prepared``: a parsed document chunked and ready to embed and write.
``file_result`` and ``unchanged_result`` build the ``FileResult`` the report shows.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ingest.discover import DiscoveredFile
from ingest.documents import Chunk, ParsedDocument
from ingest.manifest import DocumentRecord
from ingest.report import FileResult

HASH_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class Job:
    """A file to parse and store: its document id, content hash and manifest row (if any)."""

    file: DiscoveredFile
    doc_id: str
    content_hash: str
    record: DocumentRecord | None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A parsed document chunked and ready to embed and write."""

    job: Job
    parsed: ParsedDocument
    title: str
    chunks: list[Chunk]

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.chunks]


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes (content only: no name, no timestamps)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def relative_message(message: str | None, root: Path) -> str | None:
    """A parser or OS message with the server's absolute root replaced: paths relative to it."""
    if not message:
        return message
    for folder in {str(root), os.path.realpath(root)}:
        message = message.replace(folder + os.sep, "").replace(folder, ".")
    return message


def display_title(metadata_title: str | None, file_name: str) -> str:
    """The document's own title when it reads like one, else its file name.

    Metadata titles are often junk (accession numbers, "Microsoft Word - doc1.docx").
    """
    title = " ".join((metadata_title or "").split())
    words = [w for w in title.split() if sum(ch.isalpha() for ch in w) >= 2]
    if len(words) < 2 or title.lower().startswith(("microsoft word", "untitled")):
        return file_name
    return title


def unchanged_result(file: DiscoveredFile, record: DocumentRecord) -> FileResult:
    """The result of a file whose settled manifest row is current (indexed or failed)."""
    if record.status == "failed":
        return file_result(
            file,
            record.id,
            "failed",
            record.error_code,
            f"{record.error_message} (unchanged since the last attempt)",
            file_type=record.file_type,
        )
    result = file_result(file, record.id, "unchanged", file_type=record.file_type)
    result.chunks = record.chunk_count
    result.pages = record.page_count
    return result


def file_result(
    file: DiscoveredFile,
    doc_id: str,
    status: str,
    reason: str | None = None,
    message: str | None = None,
    file_type: str | None = None,
) -> FileResult:
    """One file's result; absolute paths in the message are made relative to its root."""
    return FileResult(
        path=file.relative,
        root=str(file.root),
        document_id=doc_id,
        status=status,  # type: ignore[arg-type]
        reason=reason,
        message=relative_message(message, file.root),
        file_type=file_type,
        bytes=file.size,
    )
