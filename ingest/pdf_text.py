"""A PDF's text layer through pypdfium2, as the elements unstructured's ``fast`` strategy makes.

``partition_pdf(strategy="fast")`` spends most of its time in pdfminer's pure-Python content
stream interpreter and layout analysis. This reads each page's characters and their boxes with
pdfium (C++) instead, then rebuilds what unstructured would: words, lines, text boxes grouped
by pdfminer's own rules (a line joins the box above it when it is within half a line height,
of the same height, and left-, right- or centre-aligned with it), one element per box through
unstructured's ``element_from_text`` (headers and footers by position, list items, narrative
text, titles), and the page's elements ordered by the same basic then XY-cut sort. (Its merging
of a list item with the boxes below it is left out: on pdfium's tighter boxes it swallowed the
next item.) Page numbers, coordinates (points, y downwards) and element
categories are kept, so tables (``ingest.pdf_tables``, fed the same words: each page is read
once) and the OCR of textless pages work as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.pdf_layout import Line, Word, read_words
from ingest.pdf_tables import PdfTable, carry_headers, page_tables

if TYPE_CHECKING:
    from unstructured.documents.elements import Element

LINE_MARGIN = 0.5
"""pdfminer's ``line_margin``: lines closer than this many line heights share a text box."""
CHAR_MARGIN = 2.0
"""pdfminer's ``char_margin``: a wider gap (in ems) between words starts a new text line."""
NLP_BATCH = 64
DUPLICATE_TOLERANCE = 1.5
"""Points within which a second copy of the same word is fake bold (drawn twice), not text."""


@dataclass(slots=True)
class TextLayer:
    """A PDF's elements in reading order, its tables, and its page count."""

    elements: list[Element] = field(default_factory=list)
    tables: list[PdfTable] = field(default_factory=list)
    pages: int = 0


@dataclass(slots=True)
class _Box:
    lines: list[Line]
    x0: float
    x1: float
    top: float
    bottom: float


def read_text_layer(path: Path, *, tables: bool = True, filename: str | None = None) -> TextLayer:
    """Elements of every page of ``path`` (and its tables when ``tables``).

    Raises whatever pypdfium2 raises on a file it cannot open (the caller falls back).
    """
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    layer = TextLayer(pages=len(pdf))
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            try:
                width, height = page.get_width(), page.get_height()
                textpage = page.get_textpage()
                try:
                    words = _dedupe(read_words(textpage, height))
                finally:
                    textpage.close()
            finally:
                page.close()
            if not words:
                continue
            found = page_tables(words, index + 1) if tables else []
            layer.tables.extend(found)
            layer.elements.extend(
                page_elements(words, index + 1, width, height, filename or str(path), found)
            )
    finally:
        pdf.close()
    carry_headers(layer.tables)
    return layer


def page_elements(
    words: list[Word],
    page: int,
    width: float,
    height: float,
    filename: str | None = None,
    tables: Sequence[PdfTable] = (),
) -> list[Element]:
    """One page's elements, built and ordered as unstructured's ``fast`` strategy does
    (text boxes inside one of ``tables`` are not classified: the table replaces them)."""
    from unstructured.documents.coordinates import PixelSpace
    from unstructured.documents.elements import CoordinatesMetadata, ElementMetadata, Text
    from unstructured.partition.text import element_from_text
    from unstructured.partition.utils.constants import SORT_MODE_BASIC, SORT_MODE_XY_CUT
    from unstructured.partition.utils.sorting import sort_page_elements

    system = PixelSpace(width=width, height=height)
    elements: list[Element] = []
    boxes = [(box, _box_text(box)) for box in text_boxes(words)]
    boxes = [(box, text) for box, text in boxes if text]
    # text inside a table gives way to the table (pdf_partition.place_tables): not worth classifying
    loose = [not any(_inside(box, t) for t in tables) for box, _ in boxes]
    with batched_nlp([text for (_, text), keep in zip(boxes, loose) if keep]):
        classified = [
            element_from_text(text, coordinates=_points(box), coordinate_system=system)
            if keep
            else Text(text=text)
            for (box, text), keep in zip(boxes, loose)
        ]
    for (box, _), element in zip(boxes, classified):
        points = _points(box)
        element.metadata = ElementMetadata(
            filename=filename,
            page_number=page,
            coordinates=CoordinatesMetadata(points=points, system=system),
            languages=["eng"],
        )
        element.metadata.detection_origin = "pdfium"
        elements.append(element)
    ordered: list[Any] = sort_page_elements(elements, SORT_MODE_BASIC)
    return list(sort_page_elements(ordered, SORT_MODE_XY_CUT))


def _inside(box: _Box, table: PdfTable) -> bool:
    """The box's centre lies in the table's box (``pdf_partition.place_tables``'s rule)."""
    x0, top, x1, bottom = table.box
    x, y = (box.x0 + box.x1) / 2, (box.top + box.bottom) / 2
    return x0 - 2 <= x <= x1 + 2 and top - 2 <= y <= bottom + 2


def _box_text(box: _Box) -> str:
    return " ".join(" ".join(w.text for line in box.lines for w in line.words).split())


def _points(box: _Box) -> tuple[tuple[float, float], ...]:
    return ((box.x0, box.top), (box.x0, box.bottom), (box.x1, box.bottom), (box.x1, box.top))


@contextmanager
def batched_nlp(texts: list[str]) -> Iterator[None]:
    """Run unstructured's spaCy pipeline over ``texts`` in one batch (``nlp.pipe``, about 3x
    the speed of one call per text); classifying them meanwhile reuses those results."""
    from unstructured.nlp import tokenize

    process = getattr(tokenize, "_process", None)
    get_nlp = getattr(tokenize, "_get_nlp", None)
    if process is None or get_nlp is None:  # another unstructured version: one call per text
        yield
        return
    limit = getattr(tokenize, "MAX_CACHEABLE_CHARS", 8192)
    # contains_verb tags an all-capitals text in lower case
    wanted = [t for t in dict.fromkeys([*texts, *(t.lower() for t in texts if t.isupper())])]
    wanted = [t for t in wanted if len(t) <= limit]
    docs = dict(zip(wanted, get_nlp().pipe(wanted, batch_size=NLP_BATCH)))

    def batched(text: str) -> Any:
        doc = docs.get(str(text))
        return doc if doc is not None else process(text)

    tokenize._process = batched
    try:
        yield
    finally:
        tokenize._process = process


def text_boxes(words: list[Word]) -> list[_Box]:
    """Text lines (runs of words without a wide gap) grouped into boxes by pdfminer's rules."""
    lines = [
        Line(run, min(w.top for w in run), max(w.bottom for w in run))
        for line in text_lines(words)
        for run in _runs(line)
    ]
    lines.sort(key=lambda ln: (ln.top, ln.words[0].x0))
    parent = list(range(len(lines)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, line in enumerate(lines):
        d = LINE_MARGIN * line.height
        for j in range(i + 1, len(lines)):
            other = lines[j]
            if other.top > line.bottom + d:
                break
            if _neighbours(line, other, d):
                parent[find(j)] = find(i)
    groups: dict[int, list[Line]] = {}
    for i, line in enumerate(lines):
        groups.setdefault(find(i), []).append(line)
    boxes = []
    for members in groups.values():
        members.sort(key=lambda ln: (ln.top, ln.words[0].x0))
        boxes.append(
            _Box(
                members,
                min(ln.words[0].x0 for ln in members),
                max(ln.words[-1].x1 for ln in members),
                min(ln.top for ln in members),
                max(ln.bottom for ln in members),
            )
        )
    return boxes


def text_lines(words: list[Word]) -> list[Line]:
    """Words grouped into lines: a word joins the line it overlaps by half the smaller height
    (a quote mark or a superscript sits high on its line), ordered left to right."""
    lines: list[Line] = []
    for word in sorted(words, key=lambda w: ((w.top + w.bottom) / 2, w.x0)):
        if lines:
            line = lines[-1]
            overlap = min(line.bottom, word.bottom) - max(line.top, word.top)
            smaller = max(0.1, min(line.bottom - line.top, word.bottom - word.top))
            if overlap > 0.5 * smaller:
                line.words.append(word)
                line.top, line.bottom = min(line.top, word.top), max(line.bottom, word.bottom)
                continue
        lines.append(Line([word], word.top, word.bottom))
    for line in lines:
        line.words.sort(key=lambda w: w.x0)
    return lines


def _runs(line: Line) -> list[list[Word]]:
    """A line cut where the gap between words exceeds pdfminer's ``char_margin`` (2 ems; the
    line's height, ascenders to descenders, stands for the em)."""
    runs: list[list[Word]] = [[line.words[0]]]
    for word in line.words[1:]:
        previous = runs[-1][-1]
        if word.x0 - previous.x1 > CHAR_MARGIN * line.height:
            runs.append([word])
        else:
            runs[-1].append(word)
    return runs


def _neighbours(a: Line, b: Line, d: float) -> bool:
    """pdfminer's ``find_neighbors``: overlapping in x, close in y, same height, aligned."""
    ax0, ax1 = a.words[0].x0, a.words[-1].x1
    bx0, bx1 = b.words[0].x0, b.words[-1].x1
    if bx1 < ax0 or bx0 > ax1:
        return False
    if b.top > a.bottom + d or b.bottom < a.top - d:
        return False
    if abs(a.height - b.height) > d:
        return False
    return abs(ax0 - bx0) <= d or abs(ax1 - bx1) <= d or abs((ax0 + ax1) / 2 - (bx0 + bx1) / 2) <= d


def _dedupe(words: list[Word]) -> list[Word]:
    """Words drawn twice at (almost) the same place, as fake bold is, kept once."""
    seen: dict[tuple[str, int, int], Word] = {}
    out: list[Word] = []
    for word in words:
        key = (
            word.text,
            round(word.x0 / DUPLICATE_TOLERANCE),
            round(word.top / DUPLICATE_TOLERANCE),
        )
        if key in seen:
            continue
        seen[key] = word
        out.append(word)
    return out
