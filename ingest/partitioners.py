"""The partitioners shared by many formats, and what every partitioner passes to unstructured.

A ``Partitioner`` takes (path, decoded text or None, settings) and returns unstructured
elements. ``ingest.parse`` maps each file type to one; the PDF and e-mail partitioners live
in ``ingest.pdf_partition`` and ``ingest.mail_partition``. Unstructured is imported inside
each partitioner (it takes seconds), so importing this module is cheap.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.settings import ParseSettings

if TYPE_CHECKING:
    from unstructured.documents.elements import Element

NO_LANGUAGE_DETECTION: dict[str, Any] = {"languages": [""]}
"""Passed to every unstructured partitioner: its per-document language detection
(langdetect) only fills ``metadata.languages``, which nothing here reads, and it cost about
40% of partitioning a short plain-text file (34 of 86 ms on a SciFact abstract)."""

Partitioner = Callable[[Path, "str | None", ParseSettings], "list[Element]"]


def utf8_file(text: str | None) -> io.BytesIO:
    """The text as a UTF-8 file object (for partitioners that want ``file=``)."""
    return io.BytesIO((text or "").encode("utf-8"))


def partition_image(path: Path, _text: str | None, settings: ParseSettings) -> list[Element]:
    """An image file read by OCR (``ingest.ocr``)."""
    from ingest.ocr import ocr_image_file

    return ocr_image_file(path, settings)


def legacy(kind: str, modern: Partitioner, *, first: Partitioner | None = None) -> Partitioner:
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


def json_or_text(_path: Path, text: str | None, _settings: ParseSettings) -> list[Element]:
    """JSON, else NDJSON, else plain text (broken JSON is still text worth finding)."""
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


def by_filename(module: str, function: str, **kwargs: Any) -> Partitioner:
    """A partitioner calling ``unstructured.partition.<module>.<function>(filename=..., ...)``."""

    def run(path: Path, _text: str | None, _settings: ParseSettings) -> list[Element]:
        import importlib

        partition = getattr(importlib.import_module(f"unstructured.partition.{module}"), function)
        return list(partition(filename=str(path), **NO_LANGUAGE_DETECTION, **kwargs))

    return run


def by_text(module: str, function: str, *, as_file: bool = False, **kw: Any) -> Partitioner:
    """A partitioner fed the decoded text (``text=``), or UTF-8 bytes (``file=``)."""

    def run(path: Path, text: str | None, _settings: ParseSettings) -> list[Element]:
        import importlib

        partition = getattr(importlib.import_module(f"unstructured.partition.{module}"), function)
        if as_file:
            file = utf8_file(text)
            return list(
                partition(file=file, metadata_filename=str(path), **NO_LANGUAGE_DETECTION, **kw)
            )
        return list(partition(text=text, **NO_LANGUAGE_DETECTION, **kw))

    return run


def table_or_text(partitioner: Partitioner) -> Partitioner:
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
