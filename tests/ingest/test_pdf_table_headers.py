"""Column headers of PDF tables: grouped headers, label lines, marks, continued tables."""

from __future__ import annotations

from pathlib import Path

from ingest.chunk import Chunker
from ingest.embed import Embedder
from ingest.parse import parse_file
from ingest.pdf_layout import Word
from ingest.pdf_tables import PdfTable, carry_headers, find_tables, page_tables
from ingest.settings import ChunkSettings, ParseSettings
from ingest.tables import Grid, render
from tests.ingest.pdf_statement_fixtures import (
    CAPTION,
    GROUPED_ROWS,
    GROUPS,
    PERIODS,
    TITLE,
    YEARS,
    continued_row,
    continued_statement_pdf,
    grouped_statement_pdf,
)


def test_grouped_headers_label_lines_and_marks(tmp_path: Path) -> None:
    (table,) = find_tables(grouped_statement_pdf(tmp_path / "grouped.pdf"))
    grid = table.grid
    # each group heads both of its columns, though it is printed mostly over the first;
    # "Assets" and the raised mark between headers and rows do not cut the headers off
    assert grid.caption == "(In millions)"
    assert grid.headers == [f"{group} {year}" for group in GROUPS for year in YEARS]
    assert grid.rows[0] == ["Assets"]
    for (label, figures), row in zip(GROUPED_ROWS, grid.rows[1:], strict=True):
        assert row[0].startswith(label)
        assert row[1:] == [figure.replace(" ", "") for figure in figures]


def _words(y: float, *cells: tuple[str, float, float]) -> list[Word]:
    return [Word(text, x0, x1, y, y + 8) for text, x0, x1 in cells]


def test_currency_sign_close_to_the_column_before_starts_no_merge() -> None:
    # "(260 )" then "$" 0.9 pt later, as one filing prints it: two columns, not one
    words = [
        *_words(10, ("Quarter", 18, 58), ("2024", 478, 492), ("2023", 555, 570)),
        *_words(22, ("Revenue", 18, 60), ("$", 420, 425), ("22,291", 465, 492)),
        *_words(22, ("$", 497, 502), ("17,556", 543, 570)),
        *_words(34, ("Costs", 18, 50), ("(260", 475, 492), (")", 493.6, 496.1)),
        *_words(34, ("(1,897", 545, 570), (")", 571, 574)),
        *_words(46, ("Total", 18, 45), ("$", 420, 425), ("22,031", 465, 492)),
        *_words(46, ("$", 497, 502), ("15,659", 543, 570)),
    ]
    (table,) = page_tables(words, 1)
    assert render(table.grid).split("\n") == [
        "Quarter | 2024 | 2023",
        "Revenue | $22,291 | $17,556",
        "Costs | (260) | (1,897)",
        "Total | $22,031 | $15,659",
    ]


def test_continued_table_keeps_its_headers_in_every_piece(
    tmp_path: Path, embedder: Embedder
) -> None:
    path = continued_statement_pdf(tmp_path / "continued.pdf", rows=70)
    tables = find_tables(path)
    assert [t.page for t in tables] == [1, 2]
    assert all(t.grid.headers == list(PERIODS) for t in tables)  # page 2 prints none
    document = parse_file(path, ParseSettings())
    chunker = Chunker(ChunkSettings(), embedder.tokenize, embedder.max_tokens)
    pieces = [c for c in chunker.chunk(document, "continued.pdf") if c.is_table]
    assert len(pieces) >= 4 and {p for c in pieces for p in c.pages} == {1, 2}
    seen: list[str] = []
    for piece in pieces:
        lines = piece.body.split("\n")
        first = next(i for i, line in enumerate(lines) if line.startswith("Line item "))
        head = "\n".join(lines[:first])
        assert all(period in head for period in PERIODS), piece.body
        assert TITLE in head and CAPTION in head
        seen += [line for line in lines[first:] if line.startswith("Line item ")]
    assert seen == [" | ".join(continued_row(i)) for i in range(70)]  # each row once, in order


def _table(page: int, headers: list[str], *, opens: bool, closes: bool) -> PdfTable:
    grid = Grid(caption="", headers=headers, rows=[["Total", *["1,000"] * len(headers)]])
    return PdfTable(page, (0.0, 0.0, 1.0, 1.0), grid, opens_page=opens, closes_page=closes)


def test_only_a_table_going_on_overleaf_takes_the_headers_before_it() -> None:
    headed = _table(1, ["2024", "2023"], opens=False, closes=True)
    goes_on = _table(2, ["", ""], opens=True, closes=False)
    after_prose = _table(3, ["", ""], opens=False, closes=True)
    other_width = _table(4, ["", "", ""], opens=True, closes=True)
    carry_headers([headed, goes_on, after_prose, other_width])
    assert goes_on.grid.headers == ["2024", "2023"]
    assert after_prose.grid.headers == ["", ""]  # prose above it on its page: a new table
    assert other_width.grid.headers == ["", "", ""]
