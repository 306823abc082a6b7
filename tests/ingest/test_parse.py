"""In-process parsing: every format yields its text; every bad file a clear rejection."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from ingest.documents import ParsedDocument
from ingest.errors import (
    CorruptFile,
    EmptyFile,
    FileRejected,
    ParseError,
    TooLarge,
    UnsupportedType,
)
from ingest.parse import parse_file, rejection_for
from ingest.settings import ParseSettings
from tests.ingest.fixtures import (
    BAD_FILES,
    EXPECTED_TYPES,
    MARKERS,
    PDF_PAGE_MARKERS,
    ZIP_BOMB_INFLATED_MB,
)

SETTINGS = ParseSettings()


def _text(document: ParsedDocument) -> str:
    return "\n".join(element.text for element in document.elements)


def _element_with(document: ParsedDocument, needle: str) -> list[tuple[str, int | None]]:
    return [(e.category, e.page_number) for e in document.elements if needle in e.text]


@pytest.fixture(scope="module")
def parsed(corpus: dict[str, Path]) -> dict[str, ParsedDocument]:
    """Every good corpus file parsed once for the module's assertions."""
    return {name: parse_file(corpus[name], SETTINGS) for name in [*MARKERS, "docx_as_pdf"]}


@pytest.mark.parametrize("name", sorted(MARKERS))
def test_marker_comes_through(parsed: dict[str, ParsedDocument], name: str) -> None:
    document = parsed[name]
    assert document.file_type == EXPECTED_TYPES[name]
    assert MARKERS[name] in _text(document)
    assert all(
        element.text.strip() == element.text and element.text for element in document.elements
    )


def test_pdf_pages(parsed: dict[str, ParsedDocument]) -> None:
    document = parsed["pdf"]
    assert document.page_count == 3
    assert document.title == "Fixture PDF Title"
    for page, marker in PDF_PAGE_MARKERS.items():
        assert _element_with(document, marker) == [("NarrativeText", page)]
    assert ("Title", 1) in _element_with(document, "Section 1")


def test_docx_structure(parsed: dict[str, ParsedDocument]) -> None:
    document = parsed["docx"]
    assert document.title == "Fixture DOCX Title"
    assert [e.category for e in document.elements if e.text == "Quarterly Operations Memo"] == [
        "Title"
    ]
    tables = [e for e in document.elements if e.category == "Table"]
    assert len(tables) == 1 and "docx-table-cell" in tables[0].text


def test_pptx_slides_are_pages(parsed: dict[str, ParsedDocument]) -> None:
    document = parsed["pptx"]
    assert document.page_count == 2
    assert [page for _, page in _element_with(document, MARKERS["pptx"])] == [2]
    assert [page for _, page in _element_with(document, "Opening remarks")] == [1]


def test_mislabelled_docx_parses_as_docx(parsed: dict[str, ParsedDocument]) -> None:
    assert parsed["docx_as_pdf"].file_type == "docx"
    assert MARKERS["docx"] in _text(parsed["docx_as_pdf"])


@pytest.mark.parametrize(
    ("name", "expected"),
    [("txt_latin1", "crème brûlée a été"), ("txt_utf16", "Grüße aus Köln"), ("txt", "Zürich")],
)
def test_text_encodings(parsed: dict[str, ParsedDocument], name: str, expected: str) -> None:
    assert expected in _text(parsed[name])


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("eml", "Fixture email subject"),
        ("msg", "Fixture Outlook subject"),
        ("html", "Fixture HTML Title"),
        ("epub", "Fixture EPUB Title"),
        ("odt", "Fixture ODT Title"),
        ("xlsx", "Fixture Workbook"),
        ("txt", None),
    ],
)
def test_titles(parsed: dict[str, ParsedDocument], name: str, title: str | None) -> None:
    assert parsed[name].title == title


@pytest.mark.parametrize("name", ["eml", "msg"])
def test_email_subject_leads(parsed: dict[str, ParsedDocument], name: str) -> None:
    first = parsed[name].elements[0]
    assert (first.text, first.category) == (parsed[name].title, "Title")


def test_non_paged_formats_have_no_pages(parsed: dict[str, ParsedDocument]) -> None:
    for name in ("html", "md", "txt", "xlsx", "eml", "csv"):
        assert parsed[name].page_count is None
        assert {e.page_number for e in parsed[name].elements} == {None}


def test_results_pickle_small(parsed: dict[str, ParsedDocument]) -> None:
    document = parsed["pdf"]
    data = pickle.dumps(document)
    assert pickle.loads(data) == document
    assert len(data) < 4 * len(_text(document).encode()) + 2000


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_are_rejected(corpus: dict[str, Path], name: str) -> None:
    with pytest.raises(FileRejected) as caught:
        parse_file(corpus[name], SETTINGS)
    assert caught.value.code == BAD_FILES[name]
    assert caught.value.message and "Traceback" not in caught.value.message


def test_zip_bomb_limits(corpus: dict[str, Path]) -> None:
    with pytest.raises(TooLarge, match=r"inflates \d+x"):
        parse_file(corpus["zip_bomb_docx"], SETTINGS)
    by_size = ParseSettings(max_uncompressed_mb=ZIP_BOMB_INFLATED_MB / 2, max_compression_ratio=1e9)
    with pytest.raises(TooLarge, match="MiB limit"):
        parse_file(corpus["zip_bomb_docx"], by_size)
    lenient = ParseSettings(max_uncompressed_mb=ZIP_BOMB_INFLATED_MB * 2, max_compression_ratio=1e9)
    assert MARKERS["docx"] in _text(parse_file(corpus["zip_bomb_docx"], lenient))


def test_file_size_and_page_limits(corpus: dict[str, Path]) -> None:
    with pytest.raises(TooLarge, match="MiB limit"):
        parse_file(corpus["pdf"], ParseSettings(max_file_mb=0.001))
    with pytest.raises(TooLarge, match="3 pages"):
        parse_file(corpus["pdf"], ParseSettings(max_pages=2))
    with pytest.raises(TooLarge, match="2 slides"):
        parse_file(corpus["pptx"], ParseSettings(max_pages=1))


def test_truncated_pdf_is_corrupt(corpus: dict[str, Path]) -> None:
    with pytest.raises(CorruptFile, match="damaged or truncated"):
        parse_file(corpus["truncated_pdf"], SETTINGS)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedType, match="not a regular file"):
        parse_file(tmp_path, SETTINGS)


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    path = tmp_path / "scan.pdf"
    path.write_bytes(bytes(pdf.output()))
    with pytest.raises(EmptyFile, match="no text layer"):
        parse_file(path, SETTINGS)


def test_body_text_at_page_top_is_not_a_header(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_margins(left=20, top=5)
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    body = "Continued from the previous page, this body text starts at the very top " * 3
    pdf.multi_cell(w=0, text=body + "with the marker narrowmargin.")
    path = tmp_path / "narrow.pdf"
    path.write_bytes(bytes(pdf.output()))
    document = parse_file(path, SETTINGS)
    assert _element_with(document, "narrowmargin") == [("NarrativeText", 1)]


def test_pdf_too_complex_for_unstructured_still_yields_text(tmp_path: Path) -> None:
    """unstructured skips a PDF with a vector-heavy page; its text layer is read with pypdf."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(w=0, text="The first page carries the word plainpage in ordinary prose.")
    pdf.add_page()
    pdf.set_compression(False)
    for n in range(6000):
        x = 10 + (n % 190)
        pdf.line(x, 30 + n % 200, x + 0.5, 31 + n % 200)
    pdf.set_y(250)
    pdf.multi_cell(w=0, text="The drawing page carries the word drawingpage as a caption.")
    path = tmp_path / "drawing.pdf"
    path.write_bytes(bytes(pdf.output()))
    document = parse_file(path, SETTINGS)
    assert [page for _, page in _element_with(document, "plainpage")] == [1]
    assert [page for _, page in _element_with(document, "drawingpage")] == [2]


def test_ragged_csv_falls_back_to_text(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("Lorem, ipsum\ndolor sit\nadipiscing, elit, sed, raggedrow\n", encoding="utf-8")
    document = parse_file(path, SETTINGS)
    assert document.file_type == "csv"
    assert "raggedrow" in _text(document)


def test_ndjson(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_text('{"event": "ndjsonmarker"}\n{"event": "second"}\n', encoding="utf-8")
    assert "ndjsonmarker" in _text(parse_file(path, SETTINGS))


def test_email_digest_parts(tmp_path: Path) -> None:
    path = tmp_path / "digest.eml"
    path.write_text(
        "From: a@example.com\nTo: b@example.com\nSubject: Digest\nMIME-Version: 1.0\n"
        'Content-Type: multipart/digest; boundary="b1"\n\n--b1\nContent-Type: message/rfc822\n\n'
        "From: c@example.com\nSubject: Inner\n\nThe inner digestmarker message.\n\n--b1--\n",
        encoding="utf-8",
    )
    document = parse_file(path, SETTINGS)
    assert "digestmarker" in _text(document)
    assert document.title == "Digest" or document.title is None


def test_encrypted_email(tmp_path: Path) -> None:
    path = tmp_path / "secret.eml"
    path.write_text(
        "From: a@example.com\nTo: b@example.com\nSubject: Secret\nMIME-Version: 1.0\n"
        'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\n'
        "Content-Transfer-Encoding: base64\n\nMIAGCSqGSIb3DQEHA6CAMIACAQAxggFQ\n",
        encoding="utf-8",
    )
    with pytest.raises(FileRejected) as caught:
        parse_file(path, SETTINGS)
    assert caught.value.code == "encrypted"


@pytest.mark.parametrize(
    ("error", "code", "fragment"),
    [
        (KeyError("There is no item named 'word/document.xml' in the archive"), "corrupt", "part"),
        (MemoryError(), "too_large", "memory"),
        (RecursionError("maximum recursion depth exceeded"), "corrupt", "nested"),
        (RuntimeError("pandoc died\n  with a long\n traceback"), "parse_error", "pandoc died"),
        (ValueError("Workbook is encrypted"), "encrypted", "password"),
        (PermissionError(13, "Permission denied", "/srv/a.pdf"), "parse_error", "permission"),
    ],
)
def test_rejection_for(error: BaseException, code: str, fragment: str) -> None:
    rejection = rejection_for(error)
    assert rejection.code == code
    assert fragment in rejection.message
    assert "\n" not in rejection.message


def test_rejection_messages_are_short() -> None:
    rejection = rejection_for(RuntimeError("x" * 5000))
    assert isinstance(rejection, ParseError)
    assert len(rejection.message) < 260


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="no longer exists"):
        parse_file(tmp_path / "gone.txt", SETTINGS)
