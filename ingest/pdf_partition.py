"""The PDF partitioner: pdfium's text layer, else unstructured's, else pypdf's; then tables
put in place and OCR of pages without a text layer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.partitioners import NO_LANGUAGE_DETECTION
from ingest.settings import ParseSettings
from ingest.tables import render

if TYPE_CHECKING:
    from unstructured.documents.elements import Element

    from ingest.pdf_tables import PdfTable


def partition_pdf_file(path: Path, _text: str | None, settings: ParseSettings) -> list[Element]:
    """A PDF's elements in reading order, tables in place, text-less pages OCR'd."""
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
