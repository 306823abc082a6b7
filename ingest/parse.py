"""Parse one file in-process with unstructured: limits first, then the partitioner for its type.

``parse_file`` raises only ``FileRejected`` subclasses, each with a short human message. For
isolation from hangs, crashes and memory blow-ups, call it through ``ingest.isolation``.
Unstructured is imported lazily (it takes seconds), so importing this module is cheap.
"""

from __future__ import annotations

import html
import io
import re
import stat
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.archives import ARCHIVE_TYPES
from ingest.containers import email_members, parse_archive
from ingest.detect import IMAGE_TYPES, ZIP_TYPES, decode_text, detect_type
from ingest.documents import ParsedDocument, ParsedElement
from ingest.errors import (
    CorruptFile,
    EmptyFile,
    EncryptedFile,
    FileRejected,
    ParseError,
    TooLarge,
    UnsupportedType,
)
from ingest.limits import check_file_size, check_page_count, check_zip_container
from ingest.settings import ParseSettings
from ingest.tables import grid_from_html, render

if TYPE_CHECKING:
    from unstructured.documents.elements import Element

    from ingest.pdf_tables import PdfTable

PAGED_TYPES = frozenset({"pdf", "pptx", "docx", "odt", "ppt"}) | IMAGE_TYPES
"""Types whose element page numbers mean something (slides and image frames count as pages)."""
DROPPED_CATEGORIES = frozenset({"PageBreak"})
RUNNING_CATEGORIES = frozenset({"Header", "Footer"})
RUNNING_TEXT_MAX_WORDS = 15
"""unstructured calls any PDF block in the top or bottom 7% of a page a Header/Footer; longer
blocks than this are body text on a page with narrow margins, so they become NarrativeText
(the chunker drops headers and footers)."""
TITLE_MAX_CHARS = 300
PARTITION_MODULES: tuple[str, ...] = tuple(
    f"unstructured.partition.{name}"
    for name in (
        "text", "md", "html", "xml", "json", "ndjson", "csv", "tsv", "email", "msg", "rst",
        "org", "xlsx", "pptx", "docx", "epub", "odt", "rtf", "pdf",
    )
)  # fmt: skip
"""Every partitioner module parse_file may use (``warm_up(everything=True)`` imports them)."""

_CORRUPT_EXCEPTIONS = frozenset(
    {
        "BadZipFile", "PackageNotFoundError", "XMLSyntaxError", "ExpatError", "PDFSyntaxError",
        "PSException", "PdfReadError", "UnprocessableEntityError", "UnicodeDecodeError",
        "EOFError", "InvalidFileException", "XLRDError", "CompDocError",
    }
)  # fmt: skip
_ENCRYPTED_EXCEPTIONS = frozenset(
    {"PDFPasswordIncorrect", "PDFEncryptionError", "FileNotDecryptedError", "DecryptionError"}
)
NO_LANGUAGE_DETECTION: dict[str, Any] = {"languages": [""]}
"""Passed to every unstructured partitioner: its per-document language detection
(langdetect) only fills ``metadata.languages``, which nothing here reads, and it cost about
40% of partitioning a short plain-text file (34 of 86 ms on a SciFact abstract)."""
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_DC_TITLE_RE = re.compile(rb"<dc:title[^>]*>(.*?)</dc:title>", re.DOTALL)


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

    _split_sentences_with_senter()
    partition_text(
        text="Warm-up paragraph of plain text.\n\nA TITLE\n\n- a list item", **NO_LANGUAGE_DETECTION
    )


def _split_sentences_with_senter() -> None:
    """Let unstructured's spaCy pipeline find sentences with ``senter``, not the parser.

    unstructured counts sentences (and tags parts of speech) to tell narrative text from
    titles; it loads en_core_web_sm with the dependency parser, used only for sentence
    boundaries. The model's own sentence recogniser gives the same boundaries on ordinary
    prose at about 1.6x the speed, which is a tenth of the time of parsing a PDF.
    """
    from unstructured.nlp import tokenize

    get_nlp = getattr(tokenize, "_get_nlp", None)
    if get_nlp is None:  # another unstructured version: keep its pipeline as it is
        return
    nlp = get_nlp()
    if "parser" in nlp.pipe_names and "senter" in nlp.disabled:
        nlp.disable_pipe("parser")
        nlp.enable_pipe("senter")


def rejection_for(exc: BaseException) -> FileRejected:
    """Turn a parser exception into a rejection with a short message (no traceback)."""
    if isinstance(exc, FileRejected):
        return exc
    names = {cls.__name__ for cls in type(exc).__mro__}
    detail = _short(exc)
    if isinstance(exc, MemoryError):
        return TooLarge("the parser ran out of memory on this file")
    if isinstance(exc, RecursionError):
        return CorruptFile("the document is nested too deeply to parse")
    if names & _ENCRYPTED_EXCEPTIONS or "encrypted" in detail.lower():
        return EncryptedFile(f"the file is password-protected ({detail})")
    if names & _CORRUPT_EXCEPTIONS or type(exc).__module__ == "zlib":
        return CorruptFile(f"the file is damaged or malformed ({detail})")
    if isinstance(exc, PermissionError):
        return ParseError(f"the file cannot be read: permission denied ({detail})")
    if isinstance(exc, KeyError) and "archive" in detail:
        return CorruptFile(f"the document package is missing a part ({detail})")
    return ParseError(f"the parser failed: {detail}")


def _short(exc: BaseException, limit: int = 200) -> str:
    first_line = next((line for line in str(exc).splitlines() if line.strip()), "")
    text = f"{type(exc).__name__}: {first_line.strip()}" if first_line else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    page_count, title = _preflight(kind, path, settings)
    text = _read_text(path) if kind in _TEXT_PARTITIONERS else None
    elements = _partition(kind, path, text, settings)
    parsed = _convert(elements, paged=kind in PAGED_TYPES)
    if kind in ("eml", "msg"):
        subject = next((s for e in elements if (s := getattr(e.metadata, "subject", None))), None)
        title = title or subject
        if parsed and subject and parsed[0].text != subject.strip():
            parsed.insert(0, ParsedElement(subject.strip(), "Title", None, 0))
        if not parsed and _email_is_encrypted(kind, path):  # S/MIME or PGP: not its parts
            raise EncryptedFile("the message is encrypted (S/MIME or PGP)")
        members, note = email_members(path, kind, settings)  # attachments: documents of their own
        if note is not None:
            parsed.append(note)
    if not parsed:
        if kind in ("eml", "msg") and _email_is_encrypted(kind, path):
            raise EncryptedFile("the message is encrypted (S/MIME or PGP)")
        if kind == "pdf":
            raise EmptyFile("the PDF has no text layer, and OCR found no text in its images")
        if kind in IMAGE_TYPES:
            raise EmptyFile(f"no text found in the {kind.upper()}, even with OCR")
        raise EmptyFile("no text found in the document")
    if page_count is None and kind == "pdf":
        page_count = max((e.page_number or 0 for e in parsed), default=0) or None
    if title is None and text is not None and kind == "html":
        title = _html_title(text)
    if kind in IMAGE_TYPES:
        page_count = max((e.page_number or 1 for e in parsed), default=1)
    if kind in ("eml", "msg"):
        return ParsedDocument(kind, tuple(parsed), page_count, _clean_title(title), members)
    return ParsedDocument(kind, tuple(parsed), page_count, _clean_title(title))


def _read_text(path: Path) -> str:
    text = decode_text(path.read_bytes())
    if text is None:
        raise CorruptFile("the text cannot be decoded (binary data in a text file?)")
    return text


def _preflight(kind: str, path: Path, settings: ParseSettings) -> tuple[int | None, str | None]:
    """Check limits and encryption before partitioning; return (page count, metadata title)."""
    if kind == "pdf":
        return _inspect_pdf(path, settings)
    if kind not in ZIP_TYPES:
        return None, None
    names = check_zip_container(path, settings)
    page_count = None
    if kind == "pptx":
        page_count = sum(1 for n in names if re.fullmatch(r"ppt/slides/slide\d+\.xml", n))
        check_page_count(page_count, settings, unit="slides")
    if kind == "epub":
        title_member = _epub_package_path(path)
    else:
        title_member = "meta.xml" if kind == "odt" else "docProps/core.xml"
    return page_count, _zip_member_title(path, title_member)


def _inspect_pdf(path: Path, settings: ParseSettings) -> tuple[int | None, str | None]:
    """Refuse encrypted or over-long PDFs; return (pages, title) as far as pypdf can tell."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except DependencyError:  # pypdf lacks the cipher; pdfminer will try instead
                return None, None
            if not opened:
                raise EncryptedFile("the PDF is password-protected")
        pages = len(reader.pages)
    except PdfReadError as exc:
        raise CorruptFile(f"the PDF is damaged or truncated ({_short(exc)})") from None
    except FileRejected:
        raise
    except Exception:  # pypdf is stricter than pdfminer on odd files: let pdfminer decide
        return None, None
    check_page_count(pages, settings)
    try:
        meta_title = reader.metadata.title if reader.metadata else None
    except Exception:  # a broken Info dictionary must not fail the parse
        meta_title = None
    return pages, meta_title if isinstance(meta_title, str) else None


def _epub_package_path(path: Path) -> str | None:
    with zipfile.ZipFile(path) as archive:
        container = _small_member(archive, "META-INF/container.xml")
    match = re.search(rb'full-path="([^"]+)"', container or b"")
    return match.group(1).decode("utf-8", "replace") if match else None


def _zip_member_title(path: Path, member: str | None) -> str | None:
    if member is None:
        return None
    with zipfile.ZipFile(path) as archive:
        data = _small_member(archive, member)
    match = _DC_TITLE_RE.search(data or b"")
    return html.unescape(match.group(1).decode("utf-8", "replace")) if match else None


def _small_member(archive: zipfile.ZipFile, name: str, limit: int = 1024 * 1024) -> bytes | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    return archive.read(info) if info.file_size <= limit else None


def _html_title(text: str) -> str | None:
    match = _TITLE_RE.search(text[:65536])
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))) if match else None


def _clean_title(title: str | None) -> str | None:
    if not title:
        return None
    title = " ".join(title.split())
    return title[:TITLE_MAX_CHARS] or None


def _convert(elements: Sequence[Element], *, paged: bool) -> list[ParsedElement]:
    parsed: list[ParsedElement] = []
    for element in elements:
        text = (element.text or "").strip()
        category = element.category
        if not text or category in DROPPED_CATEGORIES:
            continue
        if category in RUNNING_CATEGORIES and len(text.split()) > RUNNING_TEXT_MAX_WORDS:
            category = "NarrativeText"  # body text that merely starts near the page edge
        if category == "Table":
            text = _table_text(element) or text
        page = element.metadata.page_number if paged else None
        depth = element.metadata.category_depth
        parsed.append(ParsedElement(text, category, page, depth))
    return parsed


def _table_text(element: Element) -> str | None:
    """A table from its HTML (DOCX, XLSX, PPTX, HTML) rendered as rows with column headers."""
    markup = getattr(element.metadata, "text_as_html", None)
    if not markup:
        return None
    try:
        grid = grid_from_html(markup)
    except Exception:  # malformed markup: keep unstructured's flat text
        return None
    return render(grid) if grid is not None and grid.rows else None


def _email_is_encrypted(kind: str, path: Path) -> bool:
    if kind == "msg":
        from oxmsg import Message

        message = Message.load(str(path))
        content_type = message.message_headers.get("Content-Type", "")
        return (
            "encrypted" in content_type
            or "pkcs7-mime" in content_type
            or any((a.file_name or "").lower().endswith(".p7m") for a in message.attachments)
        )
    from email.parser import BytesHeaderParser

    with open(path, "rb") as handle:
        headers = BytesHeaderParser().parse(handle)
    content_type = str(headers.get("Content-Type", "")).lower()
    return "encrypted" in content_type or "pkcs7-mime" in content_type


# --- partitioners -------------------------------------------------------------------------

Partitioner = Callable[[Path, "str | None", ParseSettings], "list[Element]"]


def _partition(kind: str, path: Path, text: str | None, settings: ParseSettings) -> list[Element]:
    partitioner = _TEXT_PARTITIONERS.get(kind) or _FILE_PARTITIONERS.get(kind)
    if partitioner is None:
        raise UnsupportedType(f"unsupported file type: {kind}")
    return partitioner(path, text, settings)


def _utf8_file(text: str | None) -> io.BytesIO:
    return io.BytesIO((text or "").encode("utf-8"))


def _pdf(path: Path, _text: str | None, settings: ParseSettings) -> list[Element]:
    elements: list[Element] = []
    tables: Sequence[PdfTable] | None = None
    if settings.pdf_text == "pdfium":
        from ingest.pdf_text import read_text_layer

        try:
            layer = read_text_layer(path, tables=settings.tables)
            elements, tables = layer.elements, layer.tables
        except Exception:  # noqa: S110  (pdfminer gets its turn and reports what is wrong)
            pass
    if not any((e.text or "").strip() for e in elements):
        from unstructured.partition.pdf import partition_pdf

        common: dict[str, Any] = {"filename": str(path), "languages": ["eng"]}
        elements = partition_pdf(strategy="fast", infer_table_structure=False, **common)
        tables = None
    if not any((e.text or "").strip() for e in elements):
        # unstructured skips PDFs it deems too complex (vector drawings) and hides pdfminer
        # failures; pypdf may still read a text layer
        elements = _pdf_text_layer(path)
    if elements and settings.tables:
        if tables is None:
            from ingest.pdf_tables import find_tables

            tables = find_tables(path)
        elements = place_tables(elements, tables)
    from ingest.ocr import fill_textless_pages

    return fill_textless_pages(path, elements, settings)  # OCR of pages without a text layer


def place_tables(elements: list[Element], tables: Sequence[PdfTable]) -> list[Element]:
    """Put each PDF table in place of the loose text elements inside its box, on its page.

    An element belongs to a table when its centre lies in the table's box; the table takes
    the place of the first such element (or sits before the first element below it).
    """
    if not tables:
        return elements
    from unstructured.documents.elements import ElementMetadata, Table

    by_page: dict[int, list[PdfTable]] = {}
    for table in tables:
        by_page.setdefault(table.page, []).append(table)
    out: list[Element] = []
    placed: set[int] = set()
    pending_page: int | None = None

    def flush_page(page: int | None) -> None:
        for table in by_page.get(page or -1, []):
            if id(table) not in placed:
                placed.add(id(table))
                out.append(_table_element(table, Table, ElementMetadata))

    for element in elements:
        page = element.metadata.page_number
        if page != pending_page:
            flush_page(pending_page)
            pending_page = page
        centre = _centre(element)
        inside = None
        for table in by_page.get(page or -1, []):
            x0, top, x1, bottom = table.box
            if (
                centre is not None
                and x0 - 2 <= centre[0] <= x1 + 2
                and top - 2 <= centre[1] <= bottom + 2
            ):
                inside = table
                break
            if centre is not None and centre[1] > bottom and id(table) not in placed:
                placed.add(id(table))  # the table ends above this element: it comes first
                out.append(_table_element(table, Table, ElementMetadata))
        if inside is None:
            out.append(element)
        elif id(inside) not in placed:
            placed.add(id(inside))
            out.append(_table_element(inside, Table, ElementMetadata))
    flush_page(pending_page)
    for table in tables:  # a page the partitioner gave no text for
        if id(table) not in placed:
            placed.add(id(table))
            out.append(_table_element(table, Table, ElementMetadata))
    return out


def _centre(element: Element) -> tuple[float, float] | None:
    coordinates = element.metadata.coordinates
    points = getattr(coordinates, "points", None)
    if not points:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2


def _table_element(table: PdfTable, table_cls: Any, metadata_cls: Any) -> Element:
    element: Element = table_cls(
        text=render(table.grid), metadata=metadata_cls(page_number=table.page)
    )
    return element


def _pdf_text_layer(path: Path) -> list[Element]:
    """Elements from pypdf's text extraction, page by page (unstructured's text partitioner)."""
    from pypdf import PdfReader
    from unstructured.partition.text import partition_text

    reader = PdfReader(path)
    if reader.is_encrypted:
        reader.decrypt("")
    elements: list[Element] = []
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text() or ""
        if not text.strip():
            continue
        for element in partition_text(text=text, **NO_LANGUAGE_DETECTION):
            element.metadata.page_number = number
            elements.append(element)
    return elements


def _image(path: Path, _text: str | None, settings: ParseSettings) -> list[Element]:
    from ingest.ocr import ocr_image_file

    return ocr_image_file(path, settings)


def _legacy(kind: str, modern: Partitioner, *, first: Partitioner | None = None) -> Partitioner:
    """A legacy Office format read through LibreOffice (``ingest.convert``); ``first``, if
    given, is tried before converting (RTF: pandoc reads most files)."""

    def run(path: Path, text: str | None, settings: ParseSettings) -> list[Element]:
        from ingest.convert import converted

        if first is not None:
            try:
                elements = first(path, text, settings)
                if any((e.text or "").strip() for e in elements):
                    return elements
            except Exception:  # noqa: S110  (LibreOffice gets its turn)
                pass
        with converted(path, kind, settings) as modern_file:
            return modern(modern_file, None, settings)

    return run


def _json(_path: Path, text: str | None, _settings: ParseSettings) -> list[Element]:
    from unstructured.partition.json import partition_json

    try:
        return partition_json(text=text, **NO_LANGUAGE_DETECTION)
    except ValueError:  # not one JSON document: NDJSON, or broken JSON that is still text
        pass
    from unstructured.partition.ndjson import partition_ndjson

    try:
        return partition_ndjson(text=text, **NO_LANGUAGE_DETECTION)
    except ValueError:
        from unstructured.partition.text import partition_text

        return partition_text(text=text, **NO_LANGUAGE_DETECTION)


def _email(path: Path, _text: str | None, _settings: ParseSettings) -> list[Element]:
    from unstructured.partition.email import partition_email

    data = path.read_bytes()
    # attachments would bypass detection and limits (and reach for models): bodies only
    if b"\x00" in data[:4096]:  # UTF-16/32 saved mail: the email parser wants bytes it can read
        utf8 = _utf8_file(decode_text(data))
        elements = partition_email(
            file=utf8,
            metadata_filename=str(path),
            process_attachments=False,
            **NO_LANGUAGE_DETECTION,
        )
    else:
        elements = partition_email(
            filename=str(path), process_attachments=False, **NO_LANGUAGE_DETECTION
        )
    return elements or _email_text_parts(data)


def _email_text_parts(data: bytes) -> list[Element]:
    """Text of every inline part, nested messages included (digests, forwarded mail)."""
    import email
    import email.policy

    message = email.message_from_bytes(data, policy=email.policy.default)
    plain: list[str] = []
    markup: list[str] = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind in ("text/plain", "text/html"):
            try:
                content = part.get_content()
            except (LookupError, ValueError):  # unknown charset or broken encoding
                payload = part.get_payload(decode=True)
                content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            (plain if kind == "text/plain" else markup).append(str(content))
    if plain:
        from unstructured.partition.text import partition_text

        return partition_text(text="\n\n".join(plain), **NO_LANGUAGE_DETECTION)
    if markup:
        from unstructured.partition.html import partition_html

        return partition_html(text="\n".join(markup), **NO_LANGUAGE_DETECTION)
    return []


def _call(module: str, function: str, **kwargs: Any) -> Partitioner:
    """A partitioner calling ``unstructured.partition.<module>.<function>(filename=..., ...)``."""

    def run(path: Path, _text: str | None, _settings: ParseSettings) -> list[Element]:
        import importlib

        partition = getattr(importlib.import_module(f"unstructured.partition.{module}"), function)
        return list(partition(filename=str(path), **NO_LANGUAGE_DETECTION, **kwargs))

    return run


def _call_text(module: str, function: str, *, as_file: bool = False, **kw: Any) -> Partitioner:
    """A partitioner fed the decoded text (``text=``), or UTF-8 bytes (``file=``)."""

    def run(path: Path, text: str | None, _settings: ParseSettings) -> list[Element]:
        import importlib

        partition = getattr(importlib.import_module(f"unstructured.partition.{module}"), function)
        if as_file:
            file = _utf8_file(text)
            return list(
                partition(file=file, metadata_filename=str(path), **NO_LANGUAGE_DETECTION, **kw)
            )
        return list(partition(text=text, **NO_LANGUAGE_DETECTION, **kw))

    return run


def _table(partitioner: Partitioner) -> Partitioner:
    """CSV/TSV through pandas; rows pandas cannot split (ragged, mixed) are still text."""

    def run(path: Path, text: str | None, settings: ParseSettings) -> list[Element]:
        try:
            return partitioner(path, text, settings)
        except Exception as exc:
            if type(exc).__name__ not in ("ParserError", "EmptyDataError"):
                raise
        from unstructured.partition.text import partition_text

        return partition_text(text=text, **NO_LANGUAGE_DETECTION)

    return run


_TEXT_PARTITIONERS: dict[str, Partitioner] = {
    "txt": _call_text("text", "partition_text"),
    "md": _call_text("md", "partition_md"),
    "html": _call_text("html", "partition_html"),
    "xml": _call_text("xml", "partition_xml"),
    "json": _json,
    "csv": _table(_call_text("csv", "partition_csv", as_file=True, encoding="utf-8")),
    "tsv": _table(_call_text("tsv", "partition_tsv", as_file=True)),
    "rst": _call_text("rst", "partition_rst", as_file=True),
    "org": _call_text("org", "partition_org", as_file=True),
}
_FILE_PARTITIONERS: dict[str, Partitioner] = {
    "pdf": _pdf,
    "docx": _call("docx", "partition_docx"),
    "odt": _call("odt", "partition_odt"),
    "pptx": _call("pptx", "partition_pptx", include_page_breaks=False),
    "xlsx": _call("xlsx", "partition_xlsx"),
    "xls": _legacy("xls", _call("xlsx", "partition_xlsx")),
    "epub": _call("epub", "partition_epub"),
    "rtf": _legacy("rtf", _call("docx", "partition_docx"), first=_call("rtf", "partition_rtf")),
    "eml": _email,
    "msg": _call("msg", "partition_msg", process_attachments=False),
    "doc": _legacy("doc", _call("docx", "partition_docx")),
    "ppt": _legacy("ppt", _call("pptx", "partition_pptx", include_page_breaks=False)),
    **{kind: _image for kind in IMAGE_TYPES},
}
