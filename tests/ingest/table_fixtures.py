"""Generated documents holding a financial-statement-like table, one per format."""

from __future__ import annotations

import io
from pathlib import Path

CAPTION = "(In millions, except per share amounts)"
PERIODS = ("June 30, 2024", "June 30, 2023")
ROWS: tuple[tuple[str, str, str], ...] = (
    ("Product", "$ 41,250", "$ 38,120"),
    ("Service and other", "17,904", "15,611"),
    ("Total revenue", "59,154", "53,731"),
    ("Research and development", "7,312", "6,845"),
    ("Operating income", "(1,204)", "977"),
    ("Net income", "$ 22,036", "$ 18,299"),
)
"""Label, figure for the first period, figure for the second (as printed)."""
INTRO = "The quarter closed with revenue growth in every segment and lower freight costs."
OUTRO = "See the accompanying notes, which are an integral part of these statements."


def statement_pdf(path: Path, *, ruled: bool, rows: int | None = None) -> Path:
    """A one-page income statement: prose, a borderless (or ruled) table, prose.

    ``rows`` adds that many generated expense lines (a long table, on its own page size).
    """
    from fpdf import FPDF

    extra = [
        (f"Expense line {i:03d}", f"{1000 + i * 7:,}", f"{900 + i * 5:,}") for i in range(rows or 0)
    ]
    height = max(297, 120 + 6 * (len(ROWS) + len(extra)))
    pdf = FPDF(format=(210, height))
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    pdf.set_xy(20, 20)
    pdf.multi_cell(w=170, text=INTRO)
    pdf.set_font("helvetica", style="B", size=10)
    pdf.set_xy(20, 40)
    pdf.cell(w=170, text="INCOME STATEMENTS", align="C")
    pdf.set_font("helvetica", size=9)
    pdf.set_xy(20, 46)
    pdf.cell(w=170, text=CAPTION, align="C")
    pdf.set_xy(120, 56)
    pdf.cell(w=70, text="Three Months Ended", align="C")
    for n, period in enumerate(PERIODS):
        pdf.set_xy(120 + 35 * n, 61)
        pdf.cell(w=35, text=period, align="R")
    y = 70.0
    for label, first, second in [*ROWS, *extra]:
        pdf.set_xy(20, y)
        pdf.cell(w=90, text=label)
        for n, figure in enumerate((first, second)):
            sign, _, number = figure.rpartition(" ")
            if sign:
                pdf.set_xy(125 + 35 * n, y)
                pdf.cell(w=5, text=sign)
            pdf.set_xy(120 + 35 * n, y)
            pdf.cell(w=35, text=number, align="R")
        if ruled:
            pdf.line(20, y + 5.5, 190, y + 5.5)
        y += 6
    pdf.set_font("helvetica", size=10)
    pdf.set_xy(20, y + 12)
    pdf.multi_cell(w=170, text=OUTRO)
    path.write_bytes(bytes(pdf.output()))
    return path


def _cells() -> list[list[str]]:
    header = ["", *(f"Three Months Ended {p}" for p in PERIODS)]
    return [header, *([label, first, second] for label, first, second in ROWS)]


def statement_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_paragraph(INTRO)
    table = document.add_table(rows=0, cols=3)
    for row in _cells():
        cells = table.add_row().cells
        for cell, text in zip(cells, row):
            cell.text = text
    document.add_paragraph(OUTRO)
    document.save(str(path))
    return path


def statement_xlsx(path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in _cells():
        sheet.append(row)
    book.save(str(path))
    return path


def statement_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Quarterly results"
    cells = _cells()
    shape = slide.shapes.add_table(len(cells), 3, Inches(0.5), Inches(1.5), Inches(9), Inches(4))
    for r, row in enumerate(cells):
        for c, text in enumerate(row):
            shape.table.cell(r, c).text = text
    buffer = io.BytesIO()
    deck.save(buffer)
    path.write_bytes(buffer.getvalue())
    return path


def statement_html(path: Path) -> Path:
    """SEC-style markup: units in the corner cell, "$" and ")" in cells of their own."""
    head = "".join(f'<th colspan="3">Three Months Ended {p}</th>' for p in PERIODS)
    body = []
    for label, first, second in ROWS:
        cells = [f"<td>{label}</td>"]
        for figure in (first, second):
            sign, _, number = figure.rpartition(" ")
            close = ")" if number.endswith(")") else ""
            cells += [f"<td>{sign}</td>", f"<td>{number.rstrip(')')}</td>", f"<td>{close}</td>"]
        body.append(f"<tr>{''.join(cells)}</tr>")
    path.write_text(
        f"<html><body><p>{INTRO}</p><table><tr><th>{CAPTION}</th>{head}</tr>"
        f"{''.join(body)}</table><p>{OUTRO}</p></body></html>",
        encoding="utf-8",
    )
    return path
