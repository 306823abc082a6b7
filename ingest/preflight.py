"""What is read from a file before it is partitioned, and the title it ends up with.

``preflight`` checks limits and encryption (PDF pages via pypdf, zip containers and slide
counts) and reads the metadata title (PDF Info, OOXML/ODF core properties, EPUB package);
``html_title`` and ``clean_title`` finish the title after partitioning.
"""

from __future__ import annotations

import html
import re
import zipfile
from pathlib import Path

from ingest.detect import ZIP_TYPES
from ingest.errors import CorruptFile, EncryptedFile, FileRejected
from ingest.limits import check_page_count, check_zip_container
from ingest.rejections import short_reason
from ingest.settings import ParseSettings

TITLE_MAX_CHARS = 300
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_DC_TITLE_RE = re.compile(rb"<dc:title[^>]*>(.*?)</dc:title>", re.DOTALL)


def preflight(kind: str, path: Path, settings: ParseSettings) -> tuple[int | None, str | None]:
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
        raise CorruptFile(f"the PDF is damaged or truncated ({short_reason(exc)})") from None
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


def html_title(text: str) -> str | None:
    """The ``<title>`` of an HTML page (within its first 64 KiB), tags and entities resolved."""
    match = _TITLE_RE.search(text[:65536])
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))) if match else None


def clean_title(title: str | None) -> str | None:
    """A title on one line, at most ``TITLE_MAX_CHARS`` long; ``None`` when empty."""
    if not title:
        return None
    title = " ".join(title.split())
    return title[:TITLE_MAX_CHARS] or None
