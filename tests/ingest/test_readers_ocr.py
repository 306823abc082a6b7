"""OCR with Tesseract: images, multi-page TIFF, scanned and mixed PDFs; ``ocr_unavailable``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import ocr, readers
from ingest.errors import OcrUnavailable
from ingest.parse import parse_file
from ingest.settings import IngestSettings, ParseSettings
from tests.ingest import reader_fixtures as rf

needs_tesseract = pytest.mark.skipif(
    readers.tesseract_path() is None, reason="tesseract-ocr is not installed"
)


def _text(path: Path, settings: ParseSettings | None = None) -> tuple[str, dict[int, str]]:
    document = parse_file(path, settings or ParseSettings())
    pages: dict[int, str] = {}
    for element in document.elements:
        pages[element.page_number or 0] = pages.get(element.page_number or 0, "") + element.text
    return " ".join(e.text for e in document.elements).lower(), pages


def test_ocr_is_on_by_default_and_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ParseSettings().ocr == "auto" and ParseSettings().ocr_languages == "eng"
    monkeypatch.setenv("INHOUSE_PARSE__OCR", "false")
    monkeypatch.setenv("INHOUSE_PARSE__OCR_LANGUAGES", "eng+deu")
    settings = IngestSettings()
    assert settings.parse.ocr is False and settings.parse.ocr_languages == "eng+deu"


@needs_tesseract
@pytest.mark.parametrize(
    ("fmt", "suffix"), [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("BMP", ".bmp")]
)
def test_image_text_is_read(tmp_path: Path, fmt: str, suffix: str) -> None:
    path = tmp_path / f"receipt{suffix}"
    path.write_bytes(rf.image_bytes(["Receipt number zebrareceipt", "Total paid 42 euros"], fmt))
    text, pages = _text(path)
    assert "zebrareceipt" in text and "total paid 42 euros" in text
    assert set(pages) == {1}


@needs_tesseract
def test_multipage_tiff_keeps_page_numbers(tmp_path: Path) -> None:
    path = tmp_path / "fax.tiff"
    path.write_bytes(rf.multipage_tiff([["Fax page zebrafaxone"], ["Fax page zebrafaxtwo"]]))
    document = parse_file(path, ParseSettings())
    _, pages = _text(path)
    assert "zebrafaxone" in pages[1].lower() and "zebrafaxtwo" in pages[2].lower()
    assert document.page_count == 2


@needs_tesseract
def test_scanned_pdf_is_read_page_by_page(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(rf.image_pdf([["Contract zebrascanone"], ["Signed zebrascantwo"]]))
    _, pages = _text(path)
    assert "zebrascanone" in pages[1].lower() and "zebrascantwo" in pages[2].lower()


@needs_tesseract
def test_mixed_pdf_reads_the_scanned_page_only_by_ocr(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pdf"
    path.write_bytes(rf.mixed_pdf("Digital zebradigital page", ["Scanned zebrascanned page"]))
    _, pages = _text(path)
    assert "zebradigital" in pages[1].lower() and "zebrascanned" not in pages[1].lower()
    assert "zebrascanned" in pages[2].lower()


@pytest.mark.parametrize("name", ["scan.pdf", "photo.png"])
def test_without_tesseract_files_fail_as_ocr_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(ocr, "tesseract_path", lambda: None)
    path = tmp_path / name
    if name.endswith(".pdf"):
        path.write_bytes(rf.image_pdf([["zebranotread"]]))
    else:
        path.write_bytes(rf.image_bytes(["zebranotread"], "PNG"))
    with pytest.raises(OcrUnavailable, match="install the tesseract-ocr package") as caught:
        parse_file(path, ParseSettings())
    assert caught.value.code == "ocr_unavailable"


def test_mixed_pdf_without_tesseract_keeps_its_text_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ocr, "tesseract_path", lambda: None)
    path = tmp_path / "mixed.pdf"
    path.write_bytes(rf.mixed_pdf("Digital zebradigital page", ["Scanned zebrascanned page"]))
    text, _ = _text(path)
    assert "zebradigital" in text and "zebrascanned" not in text


def test_ocr_switched_off_and_missing_language(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(rf.image_bytes(["zebranotread"], "PNG"))
    with pytest.raises(OcrUnavailable, match="INHOUSE_PARSE__OCR=false"):
        parse_file(path, ParseSettings(ocr=False))
    if readers.tesseract_path() is not None:
        with pytest.raises(OcrUnavailable, match="tesseract-ocr-xyz"):
            parse_file(path, ParseSettings(ocr_languages="eng+xyz"))


@needs_tesseract
def test_paragraphs_mend_hyphenated_words() -> None:
    data = {
        "text": ["A", "docu-", "ment", "here", "", "Next"],
        "conf": [90, 90, 90, 90, -1, 90],
        "block_num": [1, 1, 1, 1, 1, 2],
        "par_num": [1, 1, 1, 1, 1, 1],
    }
    assert list(ocr._paragraphs(data)) == ["A document here", "Next"]


@needs_tesseract
@pytest.mark.timeout(900)  # two worker start-ups (the first, and its replacement after the kill)
def test_a_long_scan_finishes_or_times_out_and_the_run_goes_on(tmp_path: Path) -> None:
    """The worker's clock covers OCR: a scan too long for the timeout fails as ``timeout``
    (or, on a fast machine, finishes), and the next file is parsed all the same."""
    from ingest.documents import ParsedDocument
    from ingest.errors import FileRejected
    from ingest.isolation import ParserPool

    scan = tmp_path / "long-scan.pdf"
    scan.write_bytes(rf.image_pdf([[f"Scanned page {n} zebralong"] for n in range(1, 13)]))
    note = tmp_path / "note.txt"
    note.write_text("The zebraafter note is parsed after the long scan.\n")
    with ParserPool(ParseSettings(timeout_s=4), workers=1) as pool:
        results = dict(pool.parse_many([("scan", scan), ("note", note)]))
    long_result = results["scan"]
    if isinstance(long_result, FileRejected):
        assert long_result.code == "timeout"
    else:
        assert long_result.page_count == 12
    after = results["note"]
    assert isinstance(after, ParsedDocument)
    assert "zebraafter" in after.elements[0].text


@needs_tesseract
def test_a_truncated_image_is_corrupt(tmp_path: Path) -> None:
    from ingest.errors import CorruptFile

    data = rf.image_bytes(["zebratruncated"], "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFile, match="damaged"):
        parse_file(path, ParseSettings())
