"""Chunking: sections, tables, page numbers, window fit, running headers."""

from __future__ import annotations

from ingest.chunk import Chunker
from ingest.documents import ParsedDocument, ParsedElement
from ingest.embed import Embedder
from ingest.settings import ChunkSettings


def chunker(embedder: Embedder) -> Chunker:
    return Chunker(ChunkSettings(), embedder.tokenize, embedder.max_tokens)


def test_every_chunk_fits_the_window_and_keeps_pages(embedder: Embedder) -> None:
    sentence = "Operating income rose {} percent on higher services revenue in the quarter."
    elements = [ParsedElement("Results of operations", "Title", 1)]
    elements += [ParsedElement(sentence.format(i), "NarrativeText", 1 + i // 10) for i in range(60)]
    chunks = chunker(embedder).chunk(ParsedDocument("pdf", tuple(elements), 6), "q3.pdf")
    assert len(chunks) > 3
    assert all(embedder.count_tokens(c.text) <= embedder.max_tokens - 2 for c in chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert chunks[0].pages[0] == 1 and chunks[-1].pages[-1] == 6
    assert all(c.section_title == "Results of operations" for c in chunks)
    assert all(c.text.startswith("q3.pdf - Results of operations\n") for c in chunks)
    assert all(c.text == f"q3.pdf - Results of operations\n{c.body}" for c in chunks)
    joined = " ".join(c.text for c in chunks)
    assert all(sentence.format(i) in joined for i in range(60))  # nothing lost


def test_titles_start_sections_and_tables_stay_whole(embedder: Embedder) -> None:
    long_intro = " ".join(["The board approved the budget."] * 12)
    table = "Region Q1 Q2\nNorth 10 12\nSouth 7 9"
    elements = (
        ParsedElement("Overview", "Title", 1),
        ParsedElement(long_intro, "NarrativeText", 1),
        ParsedElement("Figures", "Title", 2),
        ParsedElement("Sales by region follow.", "NarrativeText", 2),
        ParsedElement(table, "Table", 2),
    )
    chunks = chunker(embedder).chunk(ParsedDocument("docx", elements), "plan.docx")
    # the one-line lead-in travels with its table instead of making a chunk of its own
    assert [c.section_title for c in chunks] == ["Overview", "Figures"]
    table_chunks = [c for c in chunks if c.is_table]
    assert len(table_chunks) == 1 and table_chunks[0].body == f"Sales by region follow.\n{table}"


def test_big_table_splits_on_rows_with_header(embedder: Embedder) -> None:
    rows = ["Account Amount Currency"] + [f"Account-{i} {i * 13} EUR" for i in range(150)]
    elements = (ParsedElement("\n".join(rows), "Table", 3),)
    chunks = chunker(embedder).chunk(ParsedDocument("xlsx", elements), "ledger.xlsx")
    assert len(chunks) > 1 and all(c.is_table for c in chunks)
    for chunk in chunks:
        body = chunk.text.split("\n", 1)[1]
        assert body.startswith("Account Amount Currency")
        assert embedder.count_tokens(chunk.text) <= embedder.max_tokens - 2
    joined = "\n".join(c.text for c in chunks)
    assert all(row in joined for row in rows[1:])


def test_running_headers_dropped_one_off_header_kept(embedder: Embedder) -> None:
    elements = [ParsedElement("ACME Corp confidential - page 1", "Header", 1)]
    elements.append(ParsedElement("Unique opening line.", "Header", 1))
    for page in range(1, 5):
        elements.append(ParsedElement(f"ACME Corp confidential - page {page}", "Header", page))
        elements.append(ParsedElement(f"Body text of page {page}.", "NarrativeText", page))
    chunks = chunker(embedder).chunk(ParsedDocument("pdf", tuple(elements), 4), "r.pdf")
    text = " ".join(c.text for c in chunks)
    assert "Unique opening line." in text
    assert "confidential" not in text


def test_page_edge_furniture_of_any_category_is_dropped(embedder: Embedder) -> None:
    elements = []
    for page in range(1, 6):
        elements.append(
            ParsedElement(f"Body text of page {page} about revenue.", "NarrativeText", page)
        )
        elements.append(
            ParsedElement(f"ACME Inc. | Q3 2023 Form 10-Q | {page}", "NarrativeText", page)
        )
    elements.append(ParsedElement("ACME Inc. | Q3 2023 Form 10-Q summary", "Title", 5))
    chunks = chunker(embedder).chunk(ParsedDocument("pdf", tuple(elements), 5), "q.pdf")
    text = " ".join(c.body for c in chunks)
    assert "Form 10-Q | " not in text  # the footer, on every page
    assert all(f"Body text of page {p} about revenue." in text for p in range(1, 6))


def test_short_lead_in_and_header_fragments_travel_with_the_table(embedder: Embedder) -> None:
    intro = " ".join(["Revenue grew in every region this year."] * 10)
    rows = [f"Product {i} | ${i * 1013:,} | ${i * 977:,}" for i in range(1, 60)]
    elements = (
        ParsedElement("Note 2 - Revenue", "Title", 4),
        ParsedElement(intro, "NarrativeText", 4),
        ParsedElement("Net sales by product were as follows (in millions):", "NarrativeText", 4),
        ParsedElement("Three Months Ended", "Title", 4),
        ParsedElement("July 1, 2023", "UncategorizedText", 4),
        ParsedElement("June 25, 2022", "UncategorizedText", 4),
        ParsedElement("\n".join(rows), "Table", 5),
    )
    chunks = chunker(embedder).chunk(ParsedDocument("pdf", elements, 5), "q.pdf")
    assert {c.section_title for c in chunks} == {"Note 2 - Revenue"}  # fragments start none
    tables = [c for c in chunks if c.is_table]
    assert len(tables) > 1  # split on rows
    for chunk in tables:
        assert chunk.body.startswith(
            "Net sales by product were as follows (in millions): Three Months Ended"
            " July 1, 2023 June 25, 2022\n"
        )
        assert chunk.pages == (4, 5)
    prose = [c for c in chunks if not c.is_table]
    assert prose and all("as follows" not in c.body for c in prose)  # no caption-only chunk
    joined = "\n".join(c.body for c in tables)
    assert all(row in joined for row in rows)
