"""Tables: a row's label, its column headers and its figures land in one chunk, every format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.chunk import Chunker
from ingest.documents import Chunk, ParsedDocument
from ingest.embed import Embedder
from ingest.parse import parse_file
from ingest.settings import ChunkSettings, ParseSettings
from ingest.tables import grid_from_html, render
from tests.ingest.table_fixtures import (
    CAPTION,
    INTRO,
    OUTRO,
    PERIODS,
    ROWS,
    statement_docx,
    statement_html,
    statement_pdf,
    statement_pptx,
    statement_xlsx,
)

SETTINGS = ParseSettings()


def _chunks(embedder: Embedder, document: ParsedDocument, name: str) -> list[Chunk]:
    chunker = Chunker(ChunkSettings(), embedder.tokenize, embedder.max_tokens)
    return chunker.chunk(document, name)


def _figure(printed: str) -> str:
    return printed.replace(" ", "")  # "$ 41,250" is rendered "$41,250"


def _row_line(chunk: Chunk, label: str) -> str | None:
    return next((line for line in chunk.body.split("\n") if line.startswith(label + " |")), None)


def _is_row(line: str) -> bool:
    return any(line.startswith(label + " |") for label, _, _ in ROWS)


def _assert_rows_with_headers(chunks: list[Chunk]) -> None:
    """Each row: label and both figures on one line, in a table chunk that names both periods."""
    for label, first, second in ROWS:
        holding = [c for c in chunks if c.is_table and _row_line(c, label)]
        assert holding, f"no table chunk has the row {label!r}"
        for chunk in holding:
            line = _row_line(chunk, label)
            assert line == f"{label} | {_figure(first)} | {_figure(second)}"
            # the header: the lines above the first row (a caption or title may lead them)
            lines = chunk.body.split("\n")
            first_row = next(i for i, text in enumerate(lines) if _is_row(text))
            header = "\n".join(lines[:first_row])
            assert all(period in header for period in PERIODS), header


@pytest.mark.parametrize("ruled", [False, True], ids=["borderless", "ruled"])
def test_pdf_statement_rows_carry_headers(tmp_path: Path, embedder: Embedder, ruled: bool) -> None:
    path = statement_pdf(tmp_path / "statement.pdf", ruled=ruled)
    document = parse_file(path, SETTINGS)
    tables = [e for e in document.elements if e.category == "Table"]
    assert len(tables) == 1 and tables[0].page_number == 1
    header = tables[0].text.split("\n", 1)[0]
    assert CAPTION in header and "Three Months Ended June 30, 2024" in header
    assert "Three Months Ended June 30, 2023" in header
    _assert_rows_with_headers(_chunks(embedder, document, "statement.pdf"))


def test_pdf_text_outside_tables_is_unchanged(tmp_path: Path) -> None:
    path = statement_pdf(tmp_path / "statement.pdf", ruled=False)
    with_tables = parse_file(path, SETTINGS).elements
    without = parse_file(path, ParseSettings(tables=False)).elements
    (table,) = [e for e in with_tables if e.category == "Table"]
    kept = [e for e in with_tables if e.category != "Table"]
    assert [e.text for e in kept if e.text in (INTRO, OUTRO)] == [INTRO, OUTRO]
    remaining = iter(without)
    assert all(any(e == other for other in remaining) for e in kept)  # same, in order
    table_words = set(table.text.replace("|", " ").replace("$", " ").split())
    for removed in (e for e in without if e not in kept):  # only what the table now holds
        assert set(removed.text.replace("$", " ").split()) <= table_words, removed
    texts = [e.text for e in with_tables]
    assert texts.index(INTRO) < texts.index(table.text) < texts.index(OUTRO)
    # without table finding the figures arrive apart from their labels (the old behaviour)
    assert not any("Total revenue" in e.text and "59,154" in e.text for e in without)


def test_long_pdf_table_splits_by_rows_with_headers(tmp_path: Path, embedder: Embedder) -> None:
    path = statement_pdf(tmp_path / "long.pdf", ruled=False, rows=120)
    document = parse_file(path, SETTINGS)
    (table,) = [e for e in document.elements if e.category == "Table"]
    rows = table.text.split("\n")
    chunks = [c for c in _chunks(embedder, document, "long.pdf") if c.is_table]
    assert len(chunks) > 3
    bodies = []
    for chunk in chunks:
        lines = chunk.body.split("\n")
        # the header line leads every piece, after the short text that introduced the table
        head = lines.index(rows[0])
        assert head <= 1 and not any(line in rows for line in lines[:head])
        assert all(line in rows for line in lines[head:])  # never cut inside a row
        assert embedder.count_tokens(chunk.text) <= embedder.max_tokens - 2
        bodies += lines[head + 1 :]
    assert bodies == rows[1:]  # every row once, in order
    assert "Expense line 119 | 1,833 | 1,495" in rows


WRITERS: dict[str, Callable[[Path], Path]] = {
    "docx": statement_docx,
    "xlsx": statement_xlsx,
    "pptx": statement_pptx,
    "html": statement_html,
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_office_and_html_tables_carry_headers(
    tmp_path: Path, embedder: Embedder, kind: str
) -> None:
    path = WRITERS[kind](tmp_path / f"statement.{kind}")
    document = parse_file(path, SETTINGS)
    assert sum(e.category == "Table" for e in document.elements) == 1
    chunks = _chunks(embedder, document, path.name)
    _assert_rows_with_headers(chunks)
    if kind in ("docx", "html"):
        # the one-line introduction leads the table; the text after it stays prose
        assert all(INTRO in c.body for c in chunks if c.is_table)
        prose = [c.body for c in chunks if not c.is_table]
        assert any(OUTRO in body for body in prose)


def test_html_grid_merges_signs_and_spans() -> None:
    grid = grid_from_html(
        "<table><tr><td></td><td colspan='2'>2024</td><td colspan='2'>2023</td></tr>"
        "<tr><td>Cash</td><td>$</td><td>1,200</td><td>$</td><td>(900</td><td>)</td></tr>"
        "<tr><td>Debt</td><td></td><td>300</td><td></td><td>—</td><td></td></tr></table>"
    )
    assert grid is not None
    assert render(grid).split("\n") == ["| 2024 | 2023", "Cash | $1,200 | $(900)", "Debt | 300 | —"]


def test_one_column_table_is_a_list() -> None:
    grid = grid_from_html("<table><tr><td>alpha</td></tr><tr><td>beta</td></tr></table>")
    assert grid is not None and render(grid) == "alpha\nbeta"
