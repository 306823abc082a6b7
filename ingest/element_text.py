"""unstructured's elements turned into ``ParsedElement``s, the text the chunker reads.

Page breaks are dropped, long "headers" and "footers" become body text, and tables are
rendered from their HTML (rows with column headers) where the partitioner gave it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ingest.documents import ParsedElement
from ingest.tables import grid_from_html, render

if TYPE_CHECKING:
    from unstructured.documents.elements import Element

DROPPED_CATEGORIES = frozenset({"PageBreak"})
RUNNING_CATEGORIES = frozenset({"Header", "Footer"})
RUNNING_TEXT_MAX_WORDS = 15
"""unstructured calls any PDF block in the top or bottom 7% of a page a Header/Footer; longer
blocks than this are body text on a page with narrow margins, so they become NarrativeText
(the chunker drops headers and footers)."""


def convert_elements(elements: Sequence[Element], *, paged: bool) -> list[ParsedElement]:
    """The elements with text, in order; page numbers kept only where ``paged``."""
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
