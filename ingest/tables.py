"""Tables as text a person and an encoder can read: one header line, then one line per row.

Every table, whatever its source format, is rendered the same way::

    (In millions) | Three Months Ended December 31, 2022 | Three Months Ended December 25, 2021
    Net sales: Products | $96,388 | $104,429

The first line holds the caption or units (where the row labels go) and one header per value
column, all header rows of that column joined; the chunker repeats it in every chunk that
holds part of the table. Sources: the HTML unstructured gives for DOCX, XLSX, PPTX and HTML
tables (``grid_from_html``), and for PDFs the words of the text layer (``ingest.pdf_tables``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

CELL_SEPARATOR = " | "
_CURRENCY = frozenset({"$", "€", "£", "¥"})
_TRAILERS = frozenset({")", "%", ")%", "%)"})
_NUMBER_RE = re.compile(r"^[(\[]?[-–—+]?[$€£¥]?\(?[-–—]?\d[\d,]*(\.\d+)?\)?%?\)?\*?$|^\.\d+%?$")
_SIGN_SPACE_RE = re.compile(r"([$€£¥]) (?=[\d(.])")
_PLACEHOLDER_RE = re.compile(r"^([-–—]+|n/?a|nm|\*)$", re.IGNORECASE)


@dataclass(slots=True)
class Grid:
    """A table: caption (units, title), one header per value column, rows of label + values."""

    caption: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def is_value(token: str) -> bool:
    """A figure or a figure's placeholder (a dash, n/a, NM)."""
    token = re.sub(r"^([$€£¥(]+)\s+", r"\1", token.strip())
    return bool(token) and bool(_NUMBER_RE.match(token) or _PLACEHOLDER_RE.match(token))


def render(grid: Grid) -> str:
    """The table as text: a header line (when there is one), then one line per row."""
    lines: list[str] = []
    if grid.caption or any(grid.headers):
        lines.append(_line([grid.caption, *grid.headers], keep_empty=True))
    for row in grid.rows:
        line = _line(row, keep_empty=True)
        if any(ch.isalnum() for ch in line):
            lines.append(line)
    return "\n".join(lines)


def _line(cells: list[str], *, keep_empty: bool) -> str:
    cells = [_SIGN_SPACE_RE.sub(r"\1", " ".join(c.split())) for c in cells]
    while len(cells) > 1 and not cells[-1]:
        cells.pop()  # a label-only row stays a bare label
    return CELL_SEPARATOR.join(cells if keep_empty else [c for c in cells if c]).strip()


# --- HTML (unstructured's text_as_html for DOCX, XLSX, PPTX, HTML) --------------------------


class _TableParser(HTMLParser):
    """Rows of (text, colspan, is_header) cells of the first table level."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[str, int, bool]]] = []
        self.head_rows = 0
        self._cell: list[str] | None = None
        self._span = 1
        self._th = False
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self.rows.append([])
            if self._in_head:
                self.head_rows += 1
        elif tag in ("td", "th"):
            if not self.rows:
                self.rows.append([])
            span = dict(attrs).get("colspan") or "1"
            self._span = max(1, min(50, int(span))) if span.isdigit() else 1
            self._cell, self._th = [], tag == "th"
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(("".join(self._cell).strip(), self._span, self._th))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def grid_from_html(markup: str) -> Grid | None:
    """A grid from a ``<table>``: header rows found by ``<th>``/``<thead>`` or by position."""
    parser = _TableParser()
    parser.feed(markup)
    parser.close()
    expanded: list[list[str]] = []
    th_rows: list[bool] = []
    for row in parser.rows:
        cells: list[str] = []
        for text, span, _ in row:
            cells.extend([text] * span if span > 1 else [text])
        if any(cells):
            expanded.append(cells)
            th_rows.append(bool(row) and all(is_th for _, _, is_th in row))
    if not expanded:
        return None
    width = max(len(r) for r in expanded)
    short = [len(r) < width for r in expanded]
    expanded = _merge_symbols([r + [""] * (width - len(r)) for r in expanded])
    head = _header_rows(expanded, th_rows, parser.head_rows)
    body = expanded[head:] or expanded
    keep = [i for i in range(width) if any(r[i] for r in body)]
    if len(keep) <= 1:  # one column: a list, not a table
        return Grid(rows=[[c for c in r if c][:1] for r in expanded if any(r)])
    for n in range(head):
        if short[n]:
            expanded[n] = _spread(expanded[n], keep)
    titles = [_join_unique(r[i] for r in expanded[:head]) for i in range(width)]
    headers: list[str] = []
    for n, col in enumerate(keep):
        # header text over columns that hold no figures (a "$" column) joins the next one
        start = keep[n - 1] + 1 if n else 0
        headers.append(_join_unique(titles[i] for i in range(start, col + 1)))
    rows = [[r[i] for i in keep] for r in expanded[head:]]
    return Grid(caption=headers[0], headers=headers[1:], rows=rows)


def _spread(row: list[str], keep: list[int]) -> list[str]:
    """A header row with fewer cells than the table (its colspans lost on the way): its
    titles in order over the value columns, each over an equal share of them."""
    titles = [c for c in row[1:] if c]
    columns = keep[1:]
    if not titles or len(columns) % len(titles):
        return row
    share = len(columns) // len(titles)
    out = [row[0]] + [""] * (len(row) - 1)
    for n, col in enumerate(columns):
        out[col] = titles[n // share]
    return out


def _header_rows(rows: list[list[str]], th_rows: list[bool], thead: int) -> int:
    """How many leading rows are headers: <thead>/<th> rows, else rows without figures
    (the first row at least, when it holds no figure and a figure comes below)."""
    marked = thead or next((i for i, th in enumerate(th_rows) if not th), len(th_rows))
    if marked and marked < len(rows):
        return marked
    count = 0
    for row in rows[:-1]:
        values = row[1:]
        if any(is_value(c) and not _is_year(c) for c in values):
            break
        count += 1
    has_figures = any(is_value(c) for r in rows[count:] for c in r[1:])
    return min(count, 4) if has_figures else min(1, len(rows) - 1)


def _merge_symbols(rows: list[list[str]]) -> list[list[str]]:
    """Glue a lone currency sign to the figure after it and a lone ")" or "%" to the one before."""
    out: list[list[str]] = []
    for row in rows:
        row = list(row)
        for i, cell in enumerate(row):
            if cell in _CURRENCY:
                nxt = next((j for j in range(i + 1, len(row)) if row[j]), None)
                if nxt is not None and is_value(row[nxt]):
                    row[nxt], row[i] = cell + row[nxt], ""
            elif cell in _TRAILERS:
                prev = next((j for j in range(i - 1, -1, -1) if row[j]), None)
                if prev is not None:
                    row[prev], row[i] = row[prev] + cell, ""
        out.append(row)
    return out


def _join_unique(parts: object) -> str:
    seen: list[str] = []
    for part in parts:  # type: ignore[attr-defined]
        text = " ".join(str(part).split())
        if text and (not seen or seen[-1] != text):
            seen.append(text)
    return " ".join(seen)


def _is_year(token: str) -> bool:
    return bool(re.fullmatch(r"(19|20)\d\d", token.strip()))
