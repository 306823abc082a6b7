"""Files holding other files: archives (zip, tar) and e-mails with attachments.

In the parser worker (so isolation's timeout and memory cap cover the whole container),
each member is read into a temporary file with a neutral name and parsed by
``ingest.parse.parse_file`` like any file; a member that is itself a container is
expanded in turn, down to ``max_archive_depth`` levels. The result is one
``ParsedDocument`` for the container (an archive: the list of its files; an e-mail: its
body plus the list of attachments) whose ``members`` are flattened: ``dir/file.pdf``,
``inner.zip``, ``inner.zip/notes.txt``, ``report.pdf`` (attachment). How members become
manifest rows and chunks: ``ingest.bundles``. ``read_member`` finds a member again from
its container, for serving it (``service.originals``).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path

from ingest.archives import ARCHIVE_TYPES, RawMember, archive_members
from ingest.attachments import EMAIL_TYPES, UniqueNamer, email_attachments
from ingest.documents import ParsedDocument, ParsedElement, ParsedMember
from ingest.errors import FileRejected, TooLarge
from ingest.settings import ParseSettings

CONTAINER_TYPES = ARCHIVE_TYPES | EMAIL_TYPES
LISTED_NAMES = 200
"""At most this many member names go into a container's own text."""

_DEPTH: ContextVar[int] = ContextVar("container_depth", default=0)


def parse_archive(path: Path, kind: str, settings: ParseSettings) -> ParsedDocument:
    """An archive as a document listing its files, with every member parsed."""
    if _DEPTH.get() >= settings.max_archive_depth:
        raise TooLarge(f"archives nested deeper than {settings.max_archive_depth} levels")
    members, names = _expand(archive_members(path, kind, settings), settings)  # read while open
    text = f"Archive of {len(names)} files: " + ", ".join(_listed(names))
    elements = (ParsedElement(text, "NarrativeText"),)
    return ParsedDocument(kind, elements, None, None, members=tuple(members))


def email_members(
    path: Path, kind: str, settings: ParseSettings
) -> tuple[tuple[ParsedMember, ...], ParsedElement | None]:
    """Parsed attachments of a message, and a line naming them for the message's own text.

    Past ``max_archive_depth`` (a mail attached to a mail attached to ...) attachments are
    left out; the message's body is still indexed.
    """
    if _DEPTH.get() >= settings.max_archive_depth:
        return (), None
    raws = email_attachments(path, kind, settings)
    if not raws:
        return (), None
    members, names = _expand(raws, settings)
    note = ParsedElement("Attachments: " + ", ".join(_listed(names)), "NarrativeText")
    return tuple(members), note


def _listed(names: list[str]) -> list[str]:
    if len(names) <= LISTED_NAMES:
        return names
    return [*names[:LISTED_NAMES], f"and {len(names) - LISTED_NAMES} more"]


def _expand(
    raws: Iterable[RawMember], settings: ParseSettings
) -> tuple[list[ParsedMember], list[str]]:
    """Every member, nested ones flattened, and the names of the direct ones."""
    token = _DEPTH.set(_DEPTH.get() + 1)
    namer = UniqueNamer()
    try:
        out: list[ParsedMember] = []
        names: list[str] = []
        for raw in raws:
            names.append(namer(raw.name))
            out.extend(_member(raw, names[-1], settings))
        return out, names
    finally:
        _DEPTH.reset(token)


def _member(raw: RawMember, name: str, settings: ParseSettings) -> Iterator[ParsedMember]:
    from ingest.parse import parse_file

    if raw.error is not None or raw.read is None:
        error = raw.error or FileRejected("the member cannot be read")
        yield _failed(name, raw.size, _name_hash(name, raw.size), error)
        return
    try:
        data = raw.read()
    except FileRejected as exc:
        yield _failed(name, raw.size, _name_hash(name, raw.size), exc)
        return
    digest = hashlib.sha256(data).hexdigest()
    size = len(data)
    with tempfile.TemporaryDirectory(prefix="member-") as tmp:
        target = Path(tmp) / neutral_name(name)
        target.write_bytes(data)
        del data
        try:
            document = parse_file(target, settings)
        except FileRejected as exc:
            yield _failed(name, size, digest, exc)
            return
    yield ParsedMember(name, size, digest, replace(document, members=()))
    for inner in document.members:
        yield replace(inner, name=f"{name}/{inner.name}")


def _failed(name: str, size: int, digest: str, error: FileRejected) -> ParsedMember:
    return ParsedMember(name, size, digest, None, error.code, error.message)


def _name_hash(name: str, size: int) -> str:
    """Stand-in content hash of a member never read (refused, encrypted, too large)."""
    return hashlib.sha256(f"unread\0{name}\0{size}".encode()).hexdigest()


def neutral_name(name: str) -> str:
    """A safe file name for a member's temporary copy; the extension is kept (it tells
    plain-text syntaxes apart)."""
    suffix = Path(name.rsplit("/", 1)[-1]).suffix.lower()
    return "member" + (suffix if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix) else "")


def read_member(container: Path, member: str, settings: ParseSettings) -> bytes | None:
    """The bytes of ``member`` (a name from ``ParsedMember.name``) of ``container``; None
    when the container no longer holds it."""
    from ingest.detect import detect_type

    try:
        kind = detect_type(container)
        raws: Iterable[RawMember]
        if kind in ARCHIVE_TYPES:
            raws = archive_members(container, kind, settings)  # a generator: read while open
        elif kind in EMAIL_TYPES:
            raws = email_attachments(container, kind, settings)
        else:
            return None
        namer = UniqueNamer()
        for raw in raws:
            name = namer(raw.name)
            readable = raw.read is not None and raw.error is None
            if name == member:
                return raw.read() if readable and raw.read is not None else None
            if member.startswith(name + "/") and readable and raw.read is not None:
                with tempfile.TemporaryDirectory(prefix="member-") as tmp:
                    inner = Path(tmp) / neutral_name(name)
                    inner.write_bytes(raw.read())
                    return read_member(inner, member[len(name) + 1 :], settings)
    except (FileRejected, OSError):
        return None
    return None
