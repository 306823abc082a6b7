"""The original file behind an indexed document, for callers who may read its collection.

The manifest records each document's scanned root and its path relative to it; the file
is served from there. A document in a collection the caller may not read is reported
exactly like one that does not exist (404), so ids reveal nothing. The path is checked
after resolving symlinks to stay inside the document's root.

A member of an archive or an attachment of an e-mail (``docs.zip/dir/a.pdf``,
``mail.eml/report.pdf``: ``ingest.bundles``) has no file of its own: its container (the
first real file on its path, inside the root) is opened and the member read from it on
demand (``ingest.containers.read_member``, within the ingest limits), with the same checks.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

from ingest.manifest import DocumentRecord, Manifest
from ingest.settings import ParseSettings
from service.auth import audit
from service.caller import SCOPE_QUERY, Caller
from service.errors import Forbidden, NotFound

INLINE_TYPES = frozenset({"application/pdf"})
EXTRA_TYPES = {
    ".md": "text/markdown",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True, slots=True)
class Original:
    """A servable original: where it is, what to call it, how to send it."""

    path: Path
    filename: str
    media_type: str
    collection: str
    data: bytes | None = None  # a member read from its container (then ``path`` is that)

    @property
    def inline(self) -> bool:
        """Shown in the browser (PDF viewer) rather than saved."""
        return self.media_type in INLINE_TYPES


class Originals:
    """Finds originals through the manifest."""

    def __init__(self, manifest: Manifest, parse: ParseSettings | None = None) -> None:
        self._manifest = manifest
        self._parse = parse or ParseSettings()

    def find(self, caller: Caller, document_id: str) -> Original:
        """The original of ``document_id``; ``NotFound`` / ``Forbidden`` otherwise (blocking)."""
        if not caller.has_scope(SCOPE_QUERY):
            raise Forbidden(f"this key lacks the {SCOPE_QUERY!r} scope", scope=SCOPE_QUERY)
        record = self._manifest.get(document_id) if len(document_id) <= 128 else None
        if record is None or not caller.can_read(record.collection):
            raise NotFound(f"no document {document_id!r}")
        audit.note_documents([record.collection], [document_id])
        root = Path(record.root).resolve()
        path = (root / record.path).resolve()
        if path.is_relative_to(root) and path.is_file():
            return Original(
                path=path,
                filename=Path(record.path).name,
                media_type=media_type(path),
                collection=record.collection,
            )
        member = self._member(root, record)
        if member is None:
            raise NotFound(f"the original file of document {document_id!r} is no longer there")
        return member

    def _member(self, root: Path, record: DocumentRecord) -> Original | None:
        from ingest.containers import read_member

        relative = record.path
        for cut, char in enumerate(relative):
            if char != "/" or cut == 0:
                continue
            container = (root / relative[:cut]).resolve()
            if not container.is_relative_to(root):
                return None
            if container.is_file():
                data = read_member(container, relative[cut + 1 :], self._parse)
                if data is None:
                    return None
                name = Path(relative).name
                return Original(
                    path=container,
                    filename=name,
                    media_type=media_type(Path(name)),
                    collection=record.collection,
                    data=data,
                )
        return None


def media_type(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in EXTRA_TYPES:
        return EXTRA_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
