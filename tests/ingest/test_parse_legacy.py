"""reStructuredText, Org and the legacy Office formats (.doc, .xls, .ppt) parse to their text.

The legacy files are made by LibreOffice from OOXML files generated here (the same tool the
parser needs for .doc and .ppt); without it those cases are skipped, .xls included.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ingest.detect import detect_type
from ingest.documents import ParsedDocument
from ingest.parse import parse_file
from ingest.settings import ParseSettings

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")

RST = """\
Expense policy
==============

Meals on trips are paid up to a daily limit; the code word is zebrafish-rst.

Approval
--------

* Trips abroad need the approval of a director.
* Receipts are kept for ten years.
"""

ORG = """\
#+TITLE: Expense notes
* Meals
Meals on trips are paid up to a daily limit; the code word is zebrafish-org.
** Approval
- Trips abroad need the approval of a director.
- Receipts are kept for ten years.
"""


def text_of(document: ParsedDocument) -> str:
    return "\n".join(e.text for e in document.elements)


@pytest.mark.parametrize(("name", "source", "kind"), [("policy.rst", RST, "rst"),
                                                       ("notes.org", ORG, "org")])  # fmt: skip
def test_rst_and_org(tmp_path: Path, name: str, source: str, kind: str) -> None:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    assert detect_type(path) == kind

    document = parse_file(path, ParseSettings())

    assert document.file_type == kind
    text = text_of(document)
    assert f"zebrafish-{kind}" in text
    assert "approval of a director" in text and "ten years" in text
    assert "==" not in text and "#+TITLE" not in text and "** " not in text  # markup gone
    titles = [e.text for e in document.elements if e.category == "Title"]
    assert "Approval" in titles  # headings stay headings


def write_ooxml(folder: Path) -> list[Path]:
    """A .docx, .xlsx and .pptx, each carrying its ``zebrafish-<legacy kind>`` marker."""
    from docx import Document
    from openpyxl import Workbook
    from pptx import Presentation

    doc = Document()
    doc.add_heading("Memo", level=1)
    doc.add_paragraph("The archive keeps old memos; the code word is zebrafish-doc.")
    doc.save(str(folder / "memo.docx"))
    book = Workbook()
    sheet = book.active
    sheet.append(["item", "note"])
    sheet.append(["budget", "zebrafish-xls"])
    book.save(str(folder / "figures.xlsx"))
    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly review"
    slide.placeholders[1].text = "The code word is zebrafish-ppt."
    deck.save(str(folder / "deck.pptx"))
    return [folder / "memo.docx", folder / "figures.xlsx", folder / "deck.pptx"]


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """.doc, .xls and .ppt converted by LibreOffice from generated .docx, .xlsx, .pptx."""
    if SOFFICE is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    out = tmp_path_factory.mktemp("legacy")
    sources = write_ooxml(out)
    converted = {}
    for source, target in zip(sources, ("doc", "xls", "ppt")):
        done = subprocess.run(
            [SOFFICE, f"-env:UserInstallation=file://{out / 'profile'}", "--headless",
             "--convert-to", target, "--outdir", str(out), str(source)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        path = source.with_suffix(f".{target}")
        if target == "doc":  # Writer is what the parser itself needs for .doc
            assert path.exists(), done.stdout + done.stderr
        if path.exists():  # Calc / Impress may not be installed (e.g. libreoffice-writer only)
            converted[target] = path
    return converted


@pytest.mark.parametrize("kind", ["doc", "xls", "ppt"])
def test_legacy_office_formats(legacy: dict[str, Path], kind: str) -> None:
    if kind not in legacy:
        pytest.skip(f"this LibreOffice cannot write .{kind}")
    path = legacy[kind]
    assert detect_type(path) == kind

    document = parse_file(path, ParseSettings(timeout_s=300))

    assert document.file_type == kind
    assert f"zebrafish-{kind}" in text_of(document)
