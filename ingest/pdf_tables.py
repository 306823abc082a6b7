"""Borderless tables in a PDF's text layer, found by column alignment of words (pypdfium2).

Financial statements and schedules are drawn without ruling lines: a row is a label followed,
after a wide gap, by figures; the figures of a column line up; the column headers (periods,
units) sit on the lines just above the first row, over the columns. This finds such regions
from character boxes (pypdfium2 reads them at ~10 ms a page, a few percent of unstructured's
own PDF partitioning) and returns each as a ``Grid`` with its box, in unstructured's
coordinates (points, y downwards), so the parser can put it in place of the loose text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ingest.pdf_layout import Line, Word, group_lines, read_words
from ingest.tables import Grid, is_value

MIN_ROWS = 2
"""Rows with figures a table needs (with at least 3 figures in all)."""
MAX_HEADER_LINES = 5
PROSE_WORDS = 8  # a line outside tables with more words is prose (not a running header)
ROW_GAP = 3.2  # in line heights: a wider vertical gap ends a table
_SENTENCE_END = re.compile(r"[a-z]{2}[.!?]$")  # "notes." ends a sentence, "U.S." does not
_UNITS_RE = re.compile(
    r"\b(in (millions|thousands|billions)|unaudited|except (per|share|number|percentage))\b",
    re.IGNORECASE,
)


@dataclass(slots=True)
class PdfTable:
    """A table found on a page: its box (x0, top, x1, bottom; points, y downwards)."""

    page: int
    box: tuple[float, float, float, float]
    grid: Grid
    opens_page: bool = False  # no prose above it on its page (it may continue a table)
    closes_page: bool = False  # no prose below it on its page (it may go on overleaf)


@dataclass(slots=True)
class _Row:
    line: Line
    label: list[Word]
    values: list[Word]


def find_tables(path: Path, max_pages: int | None = None) -> list[PdfTable]:
    """Tables on every page of ``path``; an unreadable file gives none (the parser decides)."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except Exception:  # pdfminer, not this helper, reports damaged files
        return []
    tables: list[PdfTable] = []
    try:
        for index in range(min(len(pdf), max_pages or len(pdf))):
            page = pdf[index]
            try:
                height = page.get_height()
                textpage = page.get_textpage()
                try:
                    words = read_words(textpage, height)
                finally:
                    textpage.close()
            finally:
                page.close()
            tables.extend(page_tables(words, index + 1))
    finally:
        pdf.close()
    carry_headers(tables)
    return tables


def page_tables(words: list[Word], page: int) -> list[PdfTable]:
    """The tables among one page's words."""
    lines = group_lines(words)
    rows = [_as_row(line) for line in lines]
    tables: list[PdfTable] = []
    i = 0
    while i < len(lines):
        if rows[i] is None:
            i += 1
            continue
        end, members = i, [i]
        j = i + 1
        while j < len(lines):
            gap = lines[j].top - lines[members[-1]].bottom
            if gap > ROW_GAP * lines[j].height:
                break
            if rows[j] is not None:
                end = j
            elif not _is_label_line(lines[j], rows, members):
                break
            members.append(j)
            j += 1
        body = _leading_labels(lines, rows, i) + [k for k in members if k <= end]
        table = _build(lines, rows, body, page)
        if table is not None:
            tables.append(table)
            i = end + 1
        else:
            i += 1
    _mark_page_edges(lines, tables)
    return tables


def _mark_page_edges(lines: list[Line], tables: list[PdfTable]) -> None:
    """Which tables open or close their page: no prose line (more than a few words, outside
    every table) and no other table above, or below, them."""

    def inside(line: Line) -> bool:
        middle = (line.top + line.bottom) / 2
        return any(t.box[1] - 1 <= middle <= t.box[3] + 1 for t in tables)

    prose = [line for line in lines if len(line.words) > PROSE_WORDS and not inside(line)]
    for n, table in enumerate(tables):
        top, bottom = table.box[1], table.box[3]
        table.opens_page = n == 0 and not any(line.bottom <= top for line in prose)
        table.closes_page = n == len(tables) - 1 and not any(line.top >= bottom for line in prose)


def carry_headers(tables: list[PdfTable]) -> None:
    """A table with no column headers that opens a page, right after a table with as many
    columns that closes the page before it, goes on with that table: it gets its caption
    and headers (so the rows of a statement printed over two pages keep their periods)."""
    for before, table in zip(tables, tables[1:]):
        grid, previous = table.grid, before.grid
        if (
            not grid.caption
            and not any(grid.headers)
            and any(previous.headers)
            and len(grid.headers) == len(previous.headers)
            and table.page == before.page + 1
            and table.opens_page
            and before.closes_page
        ):
            grid.caption, grid.headers = previous.caption, list(previous.headers)


def _as_row(line: Line) -> _Row | None:
    """A label (maybe empty) then, after a wide gap, only figures; years alone are headers."""
    segments = line.segments()
    split = len(segments)
    while split > 0 and all(is_value(w.text) or w.text in "$€£¥)%" for w in segments[split - 1]):
        split -= 1
    values = [w for seg in segments[split:] for w in seg]
    figures = [w for w in values if is_value(w.text)]
    if not figures:
        return None
    if split == 0 and len(figures) == 1 and re.fullmatch(r"\d{1,3}", figures[0].text):
        return None  # a page number
    if all(re.fullmatch(r"(19|20)\d\d", w.text) for w in figures):
        return None  # a line of years: column headers
    label = [w for seg in segments[:split] for w in seg]
    return _Row(line, label, values)


def _leading_labels(lines: list[Line], rows: list[_Row | None], first: int) -> list[int]:
    """Label lines right above the first row ("Net sales:"), part of the table body."""
    row = rows[first]
    assert row is not None
    value_x0 = row.values[0].x0
    picked: list[int] = []
    below = lines[first]
    for k in range(first - 1, max(-1, first - 4), -1):
        line = lines[k]
        if rows[k] is not None or below.top - line.bottom > 1.5 * line.height:
            break
        if len(line.segments()) != 1 or line.words[-1].x1 > value_x0 - 10:
            break
        text = " ".join(w.text for w in line.words)
        if not (text.endswith(":") or (text.isupper() and len(text.split()) <= 6)):
            break
        picked.insert(0, k)
        below = line
    return _labels_under_headers(lines, rows, first - len(picked), value_x0) + picked


def _labels_under_headers(
    lines: list[Line], rows: list[_Row | None], first: int, value_x0: float
) -> list[int]:
    """Short label lines ("Assets") between the column headers and the first row: part of
    the body, so the headers above them are still found (``_header_lines``)."""
    picked: list[int] = []
    below = lines[first]
    for k in range(first - 1, max(-1, first - 3), -1):
        line = lines[k]
        if rows[k] is not None or below.top - line.bottom > 2.5 * line.height:
            return []
        if _over_columns(line, value_x0):
            return picked  # the headers: the labels below them belong to the table
        text = " ".join(w.text for w in line.words)
        if len(line.segments()) != 1 or len(text.split()) > 6 or _SENTENCE_END.search(text):
            return []
        picked.insert(0, k)
        below = line
    return []


def _over_columns(line: Line, value_x0: float) -> bool:
    """Whether some of ``line`` sits over the value columns (a column header's place)."""
    return any(seg[0].x0 >= value_x0 - 2 * line.height for seg in line.segments())


def _is_label_line(line: Line, rows: list[_Row | None], members: list[int]) -> bool:
    """A line of text only that sits in the label column of the table being read."""
    first_value = min(
        (w.x0 for k in members if (r := rows[k]) for w in r.values if is_value(w.text)),
        default=0.0,
    )
    return len(line.segments()) == 1 and line.words[-1].x1 < first_value - 10


def _build(
    lines: list[Line], rows: list[_Row | None], body: list[int], page: int
) -> PdfTable | None:
    found = [r for k in body if (r := rows[k]) is not None]
    figures = sum(1 for r in found for w in r.values if is_value(w.text))
    if len(found) < MIN_ROWS or figures < 3:
        return None
    columns = _columns([_cells(r.values) for r in found])
    if not columns:
        return None
    if len(columns) == 1 and not any(r.label for r in found):
        return None  # a column of numbers alone (a list, page numbers): not a table
    bands = _bands(columns)
    value_x0 = bands[0][0]
    header_idx = _header_lines(lines, rows, body[0], value_x0)
    headers = ["" for _ in columns]
    caption_parts: list[str] = []
    headed = False
    for n, k in enumerate(header_idx):
        over: list[tuple[float, float, str]] = []
        for segment in lines[k].segments():
            text = " ".join(w.text for w in segment)
            x0, x1 = segment[0].x0, segment[-1].x1
            if x1 <= value_x0 or _UNITS_RE.search(text) or (x0 < value_x0 and _is_title(text)):
                caption_parts.append(text)
            else:
                over.append((x0, x1, text))
        # the top line of several headers may span groups of columns (lower lines do not)
        spanning = not headed and n + 1 < len(header_idx) and 2 <= len(over) < len(columns)
        headed = headed or len(over) > 1
        for c, text in _assign(over, columns, bands, spanning):
            headers[c] = f"{headers[c]} {text}".strip()
    grid = Grid(caption=" ".join(caption_parts), headers=headers)
    group: tuple[float, str] | None = None
    wrapped: tuple[float, str] | None = None
    for k in body:
        row = rows[k]
        label_words = lines[k].words if row is None else row.label
        label = " ".join(w.text for w in label_words)
        indent = label_words[0].x0 if label_words else value_x0
        if row is None or not row.values:
            if label.endswith(":"):
                group = (indent, label) if len(label.split()) <= 8 else None
            wrapped = None if label.endswith(":") else (indent, label)
            grid.rows.append([label])
            continue
        if wrapped is not None and (not label or label[0].islower()):
            grid.rows.pop()  # a label wrapped onto the row's line: one label
            indent, label = wrapped[0], f"{wrapped[1]} {label}".strip()
        wrapped = None
        if group is not None and indent <= group[0] + 1:
            group = None
        shown = f"{group[1]} {label}" if group and label else label
        cells = ["" for _ in columns]
        for x0, x1, text, _ in _cells(row.values):
            c = max(range(len(bands)), key=lambda n: min(x1, bands[n][1]) - max(x0, bands[n][0]))
            cells[c] = f"{cells[c]} {text}".strip()
        grid.rows.append([shown, *cells])
        if label.lower().startswith("total"):
            group = None
    top_line = lines[header_idx[0]] if header_idx else lines[body[0]]
    all_words = [w for k in [*header_idx, *body] for w in lines[k].words]
    box = (
        min(w.x0 for w in all_words),
        top_line.top,
        max(w.x1 for w in all_words),
        lines[body[-1]].bottom,
    )
    return PdfTable(page, box, grid)


def _assign(
    over: list[tuple[float, float, str]],
    columns: list[tuple[float, float]],
    bands: list[tuple[float, float]],
    spanning: bool,
) -> list[tuple[int, str]]:
    """Which columns each header text heads. A text heads the columns its band overlaps
    most; on a line of ``spanning`` headers above other header lines ("Three Months Ended",
    "Nine Months Ended" over two dates each) it heads every column whose centre lies within
    half the gap to the next text on either side."""
    out: list[tuple[int, str]] = []
    for i, (x0, x1, text) in enumerate(over):
        if spanning:
            left = (over[i - 1][1] + x0) / 2 if i else x0 - (over[1][0] - over[0][1]) / 2
            right = (
                (x1 + over[i + 1][0]) / 2 if i + 1 < len(over) else x1 + (x0 - over[i - 1][1]) / 2
            )
            picked = [c for c, (a, b) in enumerate(columns) if left <= (a + b) / 2 < right]
            if picked:
                out.extend((c, text) for c in picked)
                continue
        overlaps = [min(x1, b1) - max(x0, b0) for b0, b1 in bands]
        best = max(overlaps)
        out.extend(
            (c, text)
            for c, overlap in enumerate(overlaps)
            if best > 0 and (overlap == best or overlap > 0.3 * (x1 - x0))
        )
    return out


def _cells(values: list[Word]) -> list[tuple[float, float, str, float]]:
    """Figures with a currency sign glued to the figure after it, ")" or "%" to the one before:
    (figure's left edge, right edge, text, left edge with the sign)."""
    cells: list[tuple[float, float, str, float]] = []
    pending: Word | None = None
    for word in values:
        if word.text in ("$", "€", "£", "¥"):
            pending = word
        elif word.text in (")", "%", ")%") and cells:
            x0, _, text, left = cells[-1]
            cells[-1] = (x0, word.x1, text + word.text, left)
        else:
            text = (pending.text if pending else "") + word.text
            cells.append((word.x0, word.x1, text, pending.x0 if pending else word.x0))
            pending = None
    return cells


def _columns(
    cell_rows: list[list[tuple[float, float, str, float]]],
) -> list[tuple[float, float]]:
    """Value columns: cells whose figures overlap or share a right edge, merged (a "$" may
    sit right after the column before: it widens its column but never joins two)."""
    spans = sorted((x0, x1, left) for row in cell_rows for x0, x1, _, left in row)
    columns: list[list[float]] = []  # left edge with signs, right edge, right edge of figures
    for x0, x1, left in spans:
        if columns and x0 <= columns[-1][2] + 1:
            columns[-1][0] = min(columns[-1][0], left)
            columns[-1][1] = columns[-1][2] = max(columns[-1][2], x1)
        else:
            columns.append([left, x1, x1])
    return [(a, b) for a, b, _ in columns]


def _bands(columns: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Each column widened to the midpoints between its neighbours (where its headers sit)."""
    bands: list[tuple[float, float]] = []
    for n, (x0, x1) in enumerate(columns):
        left = (columns[n - 1][1] + x0) / 2 if n else x0 - max(20.0, (x1 - x0))
        right = (x1 + columns[n + 1][0]) / 2 if n + 1 < len(columns) else x1 + 20.0
        bands.append((left, right))
    return bands


def _header_lines(
    lines: list[Line], rows: list[_Row | None], first: int, value_x0: float
) -> list[int]:
    """The lines just above the first row that head the value columns (and a units line)."""
    picked: list[int] = []
    titles = 0
    below = lines[first]
    for k in range(first - 1, max(-1, first - 1 - MAX_HEADER_LINES - 2), -1):
        line = lines[k]
        if below.top - line.bottom > 2.5 * max(line.height, below.height) or rows[k] is not None:
            break
        text = " ".join(w.text for w in line.words)
        over_columns = _over_columns(line, value_x0)
        title = bool(picked) and _is_title(text) and titles < 1
        if not over_columns and not _UNITS_RE.search(text) and not title:
            break
        titles += title
        picked.append(k)
        below = line
    return sorted(picked)


def _is_title(text: str) -> bool:
    """A statement's title above its table: upper case, a few words ("INCOME STATEMENTS")."""
    return text.isupper() and 1 <= len(text.split()) <= 12
