"""The pdfium text layer: the same words, element kinds, page numbers and tables as pdfminer's."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ingest.documents import ParsedDocument
from ingest.parse import parse_file
from ingest.settings import ParseSettings
from tests.ingest.table_fixtures import ROWS, statement_pdf

PDFIUM = ParseSettings(pdf_text="pdfium")
PDFMINER = ParseSettings(pdf_text="pdfminer")
PROSE = (
    "The committee reviewed the quarterly results and approved the revised budget for the"
    " northern region. Revenue grew faster than expected while operating costs stayed flat,"
    " and the board asked for a detailed forecast before the next meeting."
)


def report_pdf(path: Path) -> Path:
    """Three pages: headings, prose with a per-page marker, a numbered list, a bold word drawn
    twice (fake bold), and a footer line with the page number."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    for page in range(1, 4):
        pdf.add_page()
        pdf.set_font("helvetica", style="B", size=14)
        pdf.set_xy(20, 20)
        pdf.cell(w=170, text=f"Section {page} Overview")
        pdf.set_font("helvetica", size=10)
        pdf.set_xy(20, 32)
        pdf.multi_cell(w=170, text=f"{PROSE} Marker word zeta{page}quartz appears here.")
        for item in range(1, 3):
            pdf.set_xy(20, 60 + 8 * item)
            pdf.cell(w=8, text=f"{item}.")
            pdf.set_xy(28, 60 + 8 * item)
            pdf.cell(w=160, text=f"Item {item} of page {page} describes a supplier contract.")
        for offset in (0.0, 0.25):  # fake bold: the same word drawn twice, a hair apart
            pdf.set_xy(20 + offset, 90)
            pdf.cell(w=60, text="Emboldened")
        pdf.set_xy(20, 285)
        pdf.cell(w=170, text=f"Example Corp | Quarterly Report | {page}", align="C")
    path.write_bytes(bytes(pdf.output()))
    return path


def words(document: ParsedDocument) -> Counter[str]:
    return Counter(w for e in document.elements for w in e.text.lower().split())


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return report_pdf(tmp_path_factory.mktemp("pdf") / "report.pdf")


def test_text_and_page_numbers(report: Path) -> None:
    document = parse_file(report, PDFIUM)
    assert document.file_type == "pdf" and document.page_count == 3
    for page in range(1, 4):
        on_page = [e for e in document.elements if e.page_number == page]
        marker = [e for e in on_page if f"zeta{page}quartz" in e.text]
        assert len(marker) == 1 and marker[0].category == "NarrativeText"
        assert marker[0].text.startswith("The committee reviewed the quarterly results")
        heading = [e for e in on_page if e.text == f"Section {page} Overview"]
        assert [e.category for e in heading] == ["Title"]
        first = next(e for e in on_page if "Item 1 of page" in e.text)
        assert first.text.startswith("1.")  # the number stays with its item
    assert all(e.page_number in (1, 2, 3) for e in document.elements)


def test_fake_bold_is_read_once(report: Path) -> None:
    document = parse_file(report, PDFIUM)
    assert words(document)["emboldened"] == 3  # once per page, not twice


def test_same_words_and_kinds_as_pdfminer(report: Path) -> None:
    fast, slow = parse_file(report, PDFIUM), parse_file(report, PDFMINER)
    assert fast.page_count == slow.page_count
    ours, theirs = words(fast), words(slow)
    theirs["emboldened"] = ours["emboldened"]  # pdfminer reads the fake bold word twice
    kept = sum(min(n, ours[w]) for w, n in theirs.items()) / sum(theirs.values())
    assert kept >= 0.995
    for element in slow.elements:  # each of pdfminer's paragraphs is in one of ours, same page
        if element.category == "NarrativeText":
            assert any(
                element.text in e.text and e.page_number == element.page_number
                for e in fast.elements
            ), element.text
    kinds = {e.text: e.category for e in slow.elements}
    assert {e.text: e.category for e in fast.elements if "Overview" in e.text} == {
        text: kind for text, kind in kinds.items() if "Overview" in text
    }
    footers = [e for e in fast.elements if "Quarterly Report |" in e.text]
    assert len(footers) == 3 and all(kinds[e.text] == e.category for e in footers)


def test_tables_come_out_as_rows_with_headers(tmp_path: Path) -> None:
    path = statement_pdf(tmp_path / "statement.pdf", ruled=False)
    fast, slow = parse_file(path, PDFIUM), parse_file(path, PDFMINER)
    tables = [e for e in fast.elements if e.category == "Table"]
    assert [t.text for t in tables] == [e.text for e in slow.elements if e.category == "Table"]
    assert len(tables) == 1 and tables[0].page_number == 1
    for label, _, _ in ROWS:  # the loose cells gave way to the table
        loose = [e for e in fast.elements if e.category != "Table" and e.text.startswith(label)]
        assert loose == []
        assert any(line.startswith(f"{label} |") for line in tables[0].text.split("\n"))


def test_unreadable_pdf_is_still_corrupt(tmp_path: Path) -> None:
    from ingest.errors import CorruptFile

    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 64)
    with pytest.raises(CorruptFile):
        parse_file(path, PDFIUM)
