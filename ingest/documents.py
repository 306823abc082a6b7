"""Plain data passed between the pipeline stages (parse -> chunk -> index)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ParsedElement:
    """One structural element of a document, as unstructured found it.

    ``category`` is unstructured's element category (``Title``, ``NarrativeText``,
    ``ListItem``, ``Table``, ``Header``, ``Footer``, ``Image``, ...).
    """

    text: str
    category: str
    page_number: int | None = None
    depth: int | None = None


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A whole parsed file: its elements in reading order plus facts about it.

    ``members``: the files inside it (archive members, e-mail attachments), each indexed
    as a document of its own (``ingest.containers``, ``ingest.bundles``).
    """

    file_type: str
    elements: tuple[ParsedElement, ...]
    page_count: int | None = None
    title: str | None = None
    members: tuple[ParsedMember, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedMember:
    """A file inside a container: its parsed document, or why it could not be indexed.

    ``name`` is its path inside the outermost container (``dir/inner.zip/notes.txt``);
    ``content_hash`` is the SHA-256 of its bytes.
    """

    name: str
    size: int
    content_hash: str
    document: ParsedDocument | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A unit of retrieval: the text to embed (context line + passage) and the passage itself."""

    text: str
    position: int
    section_title: str | None = None
    pages: tuple[int, ...] = field(default_factory=tuple)
    is_table: bool = False
    body: str = ""  # the passage without its context line (what Chroma stores and shows)
