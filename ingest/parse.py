"""Parse one file in-process with unstructured: limits first, then the partitioner for its type.

``parse_file`` raises only ``FileRejected`` subclasses, each with a short human message. For
isolation from hangs, crashes and memory blow-ups, call it through ``ingest.isolation``.
Unstructured is imported lazily (it takes seconds), so importing this module is cheap.

This module runs the steps and maps each file type to its partitioner; the steps live in
``ingest.preflight`` (limits, encryption, metadata title), ``ingest.partitioners``,
``ingest.pdf_partition`` and ``ingest.mail_partition`` (the partitioners),
``ingest.element_text`` (elements -> text) and ``ingest.rejections`` (exceptions -> rejections).
"""

from __future__ import annotations

import stat
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.archives import ARCHIVE_TYPES
from ingest.containers import email_members, parse_archive
from ingest.detect import IMAGE_TYPES, decode_text, detect_type
from ingest.documents import ParsedDocument, ParsedElement
from ingest.element_text import convert_elements
from ingest.errors import (
    CorruptFile,
    EmptyFile,
    EncryptedFile,
    FileRejected,
    ParseError,
    UnsupportedType,
)
from ingest.limits import check_file_size
from ingest.mail_partition import email_is_encrypted, partition_email_file
from ingest.partitioners import (
    NO_LANGUAGE_DETECTION,
    Partitioner,
    by_filename,
    by_text,
    json_or_text,
    legacy,
    partition_image,
    table_or_text,
)
from ingest.pdf_partition import partition_pdf_file
from ingest.preflight import clean_title, html_title, preflight
from ingest.rejections import rejection_for
from ingest.sentences import use_senter
from ingest.settings import ParseSettings

if TYPE_CHECKING:
    from unstructured.documents.elements import Element

__all__ = ["PAGED_TYPES", "PARTITION_MODULES", "parse_file", "rejection_for", "warm_up"]

PAGED_TYPES = frozenset({"pdf", "pptx", "docx", "odt", "ppt"}) | IMAGE_TYPES
"""Types whose element page numbers mean something (slides and image frames count as pages)."""
PARTITION_MODULES: tuple[str, ...] = tuple(
    f"unstructured.partition.{name}"
    for name in (
        "text", "md", "html", "xml", "json", "ndjson", "csv", "tsv", "email", "msg", "rst",
        "org", "xlsx", "pptx", "docx", "epub", "odt", "rtf", "pdf",
    )
)  # fmt: skip
"""Every partitioner module parse_file may use (``warm_up(everything=True)`` imports them)."""


def parse_file(path: Path, settings: ParseSettings) -> ParsedDocument:
    """Parse ``path`` into elements in reading order; raise ``FileRejected`` on any failure."""
    try:
        with warnings.catch_warnings():
            # parsers warn about every oddity of malformed input; a failure raises instead
            warnings.simplefilter("ignore")
            return _parse(path, settings)
    except FileRejected:
        raise
    except Exception as exc:  # any parser failure becomes a per-file rejection
        raise rejection_for(exc) from None


def warm_up(*, everything: bool = False) -> None:
    """Import the text partitioner (every format's elements are classified by it) and its
    sentence model, and run a tiny partition, so the first real file is not slow.

    The other partitioners are imported when their first file comes (inside that file's
    timeout), unless ``everything``: importing them all up front doubled a worker's start-up
    (4.5 s CPU instead of 2.2 s) and its memory (465 MB resident instead of 217 MB), and
    PDFs with a text layer (read by pdfium) and plain text need none of them; the PDF one
    (pdfminer, OpenCV, onnxruntime) only serves PDFs without a text layer.
    """
    import importlib

    for module in PARTITION_MODULES if everything else PARTITION_MODULES[:1]:
        importlib.import_module(module)
    from unstructured.partition.text import partition_text

    use_senter()
    partition_text(
        text="Warm-up paragraph of plain text.\n\nA TITLE\n\n- a list item", **NO_LANGUAGE_DETECTION
    )


def _parse(path: Path, settings: ParseSettings) -> ParsedDocument:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ParseError("the file no longer exists") from None
    if not stat.S_ISREG(info.st_mode):
        raise UnsupportedType("not a regular file")
    check_file_size(info.st_size, settings)
    kind = detect_type(path)
    if kind in ARCHIVE_TYPES:  # each member becomes a document of its own
        return parse_archive(path, kind, settings)
    page_count, title = preflight(kind, path, settings)
    text = _read_text(path) if kind in _TEXT_PARTITIONERS else None
    elements = _partition(kind, path, text, settings)
    parsed = convert_elements(elements, paged=kind in PAGED_TYPES)
    if kind in ("eml", "msg"):
        subject = next((s for e in elements if (s := getattr(e.metadata, "subject", None))), None)
        title = title or subject
        if parsed and subject and parsed[0].text != subject.strip():
            parsed.insert(0, ParsedElement(subject.strip(), "Title", None, 0))
        if not parsed and email_is_encrypted(kind, path):  # S/MIME or PGP: not its parts
            raise EncryptedFile("the message is encrypted (S/MIME or PGP)")
        members, note = email_members(path, kind, settings)  # attachments: documents of their own
        if note is not None:
            parsed.append(note)
    if not parsed:
        if kind in ("eml", "msg") and email_is_encrypted(kind, path):
            raise EncryptedFile("the message is encrypted (S/MIME or PGP)")
        if kind == "pdf":
            raise EmptyFile("the PDF has no text layer, and OCR found no text in its images")
        if kind in IMAGE_TYPES:
            raise EmptyFile(f"no text found in the {kind.upper()}, even with OCR")
        raise EmptyFile("no text found in the document")
    if page_count is None and kind == "pdf":
        page_count = max((e.page_number or 0 for e in parsed), default=0) or None
    if title is None and text is not None and kind == "html":
        title = html_title(text)
    if kind in IMAGE_TYPES:
        page_count = max((e.page_number or 1 for e in parsed), default=1)
    if kind in ("eml", "msg"):
        return ParsedDocument(kind, tuple(parsed), page_count, clean_title(title), members)
    return ParsedDocument(kind, tuple(parsed), page_count, clean_title(title))


def _read_text(path: Path) -> str:
    text = decode_text(path.read_bytes())
    if text is None:
        raise CorruptFile("the text cannot be decoded (binary data in a text file?)")
    return text


# --- dispatch: the partitioner for each file type ----------------------------------------


def _partition(kind: str, path: Path, text: str | None, settings: ParseSettings) -> list[Element]:
    partitioner = _TEXT_PARTITIONERS.get(kind) or _FILE_PARTITIONERS.get(kind)
    if partitioner is None:
        raise UnsupportedType(f"unsupported file type: {kind}")
    return partitioner(path, text, settings)


_TEXT_PARTITIONERS: dict[str, Partitioner] = {
    "txt": by_text("text", "partition_text"),
    "md": by_text("md", "partition_md"),
    "html": by_text("html", "partition_html"),
    "xml": by_text("xml", "partition_xml"),
    "json": json_or_text,
    "csv": table_or_text(by_text("csv", "partition_csv", as_file=True, encoding="utf-8")),
    "tsv": table_or_text(by_text("tsv", "partition_tsv", as_file=True)),
    "rst": by_text("rst", "partition_rst", as_file=True),
    "org": by_text("org", "partition_org", as_file=True),
}
_FILE_PARTITIONERS: dict[str, Partitioner] = {
    "pdf": partition_pdf_file,
    "docx": by_filename("docx", "partition_docx"),
    "odt": by_filename("odt", "partition_odt"),
    "pptx": by_filename("pptx", "partition_pptx", include_page_breaks=False),
    "xlsx": by_filename("xlsx", "partition_xlsx"),
    "xls": legacy("xls", by_filename("xlsx", "partition_xlsx")),
    "epub": by_filename("epub", "partition_epub"),
    "rtf": legacy(
        "rtf", by_filename("docx", "partition_docx"), first=by_filename("rtf", "partition_rtf")
    ),
    "eml": partition_email_file,
    "msg": by_filename("msg", "partition_msg", process_attachments=False),
    "doc": legacy("doc", by_filename("docx", "partition_docx")),
    "ppt": legacy("ppt", by_filename("pptx", "partition_pptx", include_page_breaks=False)),
    **{kind: partition_image for kind in IMAGE_TYPES},
}
