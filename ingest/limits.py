"""Size limits checked before a parser touches a file: file size, zip bombs, page counts.

Zip formats are judged from the central directory alone, without extracting anything.
Python's zip reader never yields more bytes than a member's declared size, so the declared
sizes bound what the OOXML readers can inflate; the worker memory cap covers the rest.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ingest.errors import CorruptFile, TooLarge
from ingest.settings import ParseSettings

MIB = 1024 * 1024
MAX_ZIP_MEMBERS = 100_000
"""A document with more zip members than this is refused as a bomb, whatever their sizes."""


def check_file_size(size_bytes: int, settings: ParseSettings) -> None:
    """Raise ``TooLarge`` when a file exceeds ``max_file_mb``."""
    if size_bytes > settings.max_file_mb * MIB:
        raise TooLarge(
            f"the file is {size_bytes / MIB:.1f} MiB, over the {settings.max_file_mb:g} MiB limit"
        )


def check_zip_container(path: Path, settings: ParseSettings) -> list[str]:
    """Refuse a zip bomb from its central directory; return the member names.

    Raises ``TooLarge`` when the declared uncompressed total exceeds ``max_uncompressed_mb``
    or the ratio of that total to the file's size on disk exceeds ``max_compression_ratio``,
    and ``CorruptFile`` when the central directory cannot be read.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CorruptFile(f"damaged zip container ({exc})") from None
    if len(infos) > MAX_ZIP_MEMBERS:
        raise TooLarge(f"the zip container holds {len(infos):,} members (zip bomb?)")
    total = sum(info.file_size for info in infos)
    if total > settings.max_uncompressed_mb * MIB:
        raise TooLarge(
            f"the zip container inflates to {total / MIB:,.0f} MiB, over the"
            f" {settings.max_uncompressed_mb:g} MiB limit (zip bomb?)"
        )
    on_disk = max(path.stat().st_size, 1)
    ratio = total / on_disk
    if ratio > settings.max_compression_ratio:
        raise TooLarge(
            f"the zip container inflates {ratio:,.0f}x ({total / MIB:,.1f} MiB from"
            f" {on_disk / MIB:,.2f} MiB), over the {settings.max_compression_ratio:g}x limit"
            " (zip bomb?)"
        )
    return [info.filename for info in infos]


def check_page_count(pages: int, settings: ParseSettings, unit: str = "pages") -> None:
    """Raise ``TooLarge`` when a document has more than ``max_pages`` pages (or slides)."""
    if pages > settings.max_pages:
        raise TooLarge(f"the document has {pages:,} {unit}, over the {settings.max_pages:,} limit")
