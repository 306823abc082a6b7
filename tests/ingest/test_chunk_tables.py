"""Chunking of big tables: which header lines every piece repeats; which titles head sections."""

from __future__ import annotations

from ingest.chunk import Chunker
from ingest.documents import ParsedDocument, ParsedElement
from ingest.embed import Embedder
from ingest.settings import ChunkSettings

HEADER = (
    "CONSOLIDATED SEGMENT REVENUE (Unaudited) (In millions of U.S. dollars, except per share"
    " amounts and percentages) | Three Months Ended September 30, 2024 (As Reported)"
    " | Three Months Ended September 30, 2023 (As Adjusted) | Nine Months Ended September 30,"
    " 2024 (As Reported) | Nine Months Ended September 30, 2023 (As Adjusted)"
)


def _rows(count: int) -> list[str]:
    return [
        f"Segment {i} revenue | ${i * 1013:,} | ${i * 977:,} | ${i * 3011:,} | ${i * 2903:,}"
        for i in range(1, count + 1)
    ]


def _chunker(embedder: Embedder) -> Chunker:
    return Chunker(ChunkSettings(), embedder.tokenize, embedder.max_tokens)


def test_column_headers_go_with_every_piece_when_the_lead_is_long(embedder: Embedder) -> None:
    intro = (
        "Revenue by segment for the three and nine months ended September 30, 2024 and 2023,"
        " with the amounts each segment recognized from contracts with customers:"
    )
    note = (
        "Amounts exclude intersegment eliminations, hedging gains and losses, and revenue"
        " from discontinued operations reclassified in the second quarter."
    )
    lead = f"{intro} {note}"
    rows = _rows(40)
    elements = (
        ParsedElement("Segment information", "Title", 7),
        ParsedElement(intro, "NarrativeText", 7),
        ParsedElement(note, "NarrativeText", 7),
        ParsedElement("\n".join([HEADER, *rows]), "Table", 7),
    )
    chunker = _chunker(embedder)
    # together more than half the window (the context line aside), the header alone less
    assert len(embedder.tokenize(f"{lead}\n{HEADER}")) > (embedder.max_tokens - 2) // 2
    assert len(embedder.tokenize(HEADER)) < (embedder.max_tokens - 2) // 3
    pieces = [c for c in chunker.chunk(ParsedDocument("pdf", elements), "q.pdf") if c.is_table]
    assert len(pieces) > 2
    assert pieces[0].body.startswith(f"{lead}\n{HEADER}\nSegment 1 revenue |")
    for piece in pieces[1:]:  # the lead once; the periods in every piece
        assert piece.body.startswith(f"{HEADER}\nSegment ")
    for piece in pieces:
        assert embedder.count_tokens(piece.text) <= embedder.max_tokens - 2
    joined = [line for p in pieces for line in p.body.split("\n") if line.startswith("Segment ")]
    assert joined == rows


def test_table_without_header_line_repeats_no_row(embedder: Embedder) -> None:
    rows = _rows(40)
    elements = (ParsedElement("\n".join(rows), "Table", 2),)
    pieces = _chunker(embedder).chunk(ParsedDocument("pdf", elements), "q.pdf")
    assert len(pieces) > 1
    joined = [line for p in pieces for line in p.body.split("\n")]
    assert joined == rows  # every row once: the first row is not taken for a header


def test_sentence_tails_notes_and_links_head_no_section(embedder: Embedder) -> None:
    prose = " ".join(["Revenue grew in every region on higher demand for services."] * 6)
    junk = [
        "See accompanying Notes to Condensed Consolidated Financial Statements.",
        "on the next generation process.",
        "(In millions)",
        "Our Investor Relations Page (https://example.com/investors)",
    ]
    elements = [ParsedElement("Results of Operations", "Title", 1)]
    for n, title in enumerate(junk):
        elements += [ParsedElement(prose, "NarrativeText", n + 1), ParsedElement(title, "Title")]
    elements += [
        ParsedElement(prose, "NarrativeText", 5),
        ParsedElement("Liquidity and Capital Resources", "Title", 6),
        ParsedElement(prose, "NarrativeText", 6),
    ]
    chunks = _chunker(embedder).chunk(ParsedDocument("pdf", tuple(elements)), "q.pdf")
    titles = list(dict.fromkeys(c.section_title for c in chunks))
    assert titles == ["Results of Operations", "Liquidity and Capital Resources"]
    text = "\n".join(c.body for c in chunks)
    assert all(title in text for title in junk)  # kept as text
    # a marked heading (Markdown "# ...") heads its section whatever it reads like
    marked = _chunker(embedder).chunk(ParsedDocument("md", tuple(elements)), "q.md")
    assert junk[0] in {c.section_title for c in marked}
