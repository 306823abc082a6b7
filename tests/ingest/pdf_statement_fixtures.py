"""Generated PDF statements laid out the way filings print them (fpdf2, millimetres).

- ``continued_statement_pdf``: a long statement whose rows run onto a second page that
  repeats no header (the periods are printed once, on the first page).
- ``grouped_statement_pdf``: column headers in two levels ("Three Months Ended" over two
  years, "Nine Months Ended" over two more), a label line ("Assets") between the headers
  and the first row, a superscript mark set above a label, and each "$" printed right
  close after the column before it.
"""

from __future__ import annotations

from pathlib import Path

PERIODS = ("September 30, 2024", "June 30, 2024")
TITLE = "BALANCE SHEETS"
CAPTION = "(In millions) (Unaudited)"
GROUPS = ("Three Months Ended", "Nine Months Ended")
YEARS = ("2024", "2023")
GROUPED_ROWS: tuple[tuple[str, tuple[str, str, str, str]], ...] = (
    ("Cash and cash equivalents", ("$ 1,250", "$ (1,100)", "$ 3,600", "$ (3,050)")),
    ("Short-term investments", ("204", "(187)", "611", "(540)")),
    ("Inventories", ("3,000", "2,500", "9,120", "7,480")),
    ("Total current assets", ("$ 4,454", "$ 1,213", "$ 13,331", "$ 3,890")),
)
"""Label and the four figures as printed (sign, space, number)."""
FOOTNOTED = "Cash and cash equivalents"  # the row whose label carries a superscript mark
MARK = "\u00ae"


def continued_row(i: int) -> tuple[str, str, str]:
    """Row ``i`` of the continued statement: label and its two figures."""
    return f"Line item {i:03d}", f"{1000 + i * 7:,}", f"{900 + i * 5:,}"


def continued_statement_pdf(path: Path, *, rows: int = 60) -> Path:
    """A two-page statement: title, units and periods on page 1, rows down both pages."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")  # 210 x 297 mm
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("helvetica", style="B", size=10)
    pdf.set_xy(20, 15)
    pdf.cell(w=170, text=TITLE, align="C")
    pdf.set_font("helvetica", size=9)
    pdf.set_xy(20, 22)
    pdf.cell(w=90, text=CAPTION)
    for n, period in enumerate(PERIODS):
        pdf.set_xy(120 + 35 * n, 30)
        pdf.cell(w=35, text=period, align="R")
    pdf.set_xy(20, 37)
    pdf.cell(w=90, text="Assets")
    y = 43.0
    for i in range(rows):
        if y > 280:  # the next page, with no header: the rows just go on
            pdf.set_xy(100, 289)
            pdf.cell(w=10, text=str(pdf.page_no()), align="C")
            pdf.add_page()
            y = 15.0
        label, first, second = continued_row(i)
        pdf.set_xy(20, y)
        pdf.cell(w=90, text=label)
        for n, figure in enumerate((first, second)):
            pdf.set_xy(120 + 35 * n, y)
            pdf.cell(w=35, text=figure, align="R")
        y += 6
    pdf.set_xy(20, y + 14)
    pdf.multi_cell(w=170, text="The accompanying notes are an integral part of these statements.")
    path.write_bytes(bytes(pdf.output()))
    return path


def grouped_statement_pdf(path: Path) -> Path:
    """One page: a four-column statement with two levels of column headers."""
    from fpdf import FPDF

    right = [110.0 + 24 * n for n in range(1, 5)]  # right edge of each figure column
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.c_margin = 0  # text right where it is placed
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    pdf.set_xy(20, 20)
    pdf.multi_cell(w=170, text="Our balances at the end of each period were as follows.")
    pdf.set_font("helvetica", size=9)
    pdf.set_xy(20, 40)
    pdf.cell(w=80, text="(In millions)")
    pdf.set_font("helvetica", size=7)
    for n, group in enumerate(GROUPS):  # over its two columns, mostly over the first
        pdf.set_xy(right[2 * n] - 11, 46)
        pdf.cell(w=30, text=group)
    pdf.set_font("helvetica", size=9)
    for n, right_edge in enumerate(right):
        pdf.set_xy(right_edge - 20, 52)
        pdf.cell(w=20, text=YEARS[n % 2], align="R")
    pdf.set_xy(20, 59)
    pdf.cell(w=80, text="Assets")
    y = 66.0
    for label, figures in GROUPED_ROWS:
        pdf.set_xy(20, y)
        pdf.cell(w=80, text=label)
        if label == FOOTNOTED:  # a small raised mark after the label, as "iPhone®" prints
            width = pdf.get_string_width(label)
            pdf.set_font("helvetica", size=5)
            pdf.set_xy(20 + width + 1.2, y - 0.5)
            pdf.cell(w=3, text=MARK)
            pdf.set_font("helvetica", size=9)
        for n, figure in enumerate(figures):
            sign, _, number = figure.rpartition(" ")
            if sign:  # at the left of its column, close after the column before
                pdf.set_xy(right[n - 1] + 1.5 if n else 100.0, y)
                pdf.cell(w=2, text=sign)
            edge = right[n] if number.endswith(")") else right[n] - 1.5  # ")" hangs out
            pdf.set_xy(edge - 30, y)
            pdf.cell(w=30, text=number, align="R")
        y += 6
    path.write_bytes(bytes(pdf.output()))
    return path
