"""Generate one document per supported format, plus broken and hostile files, in code.

``make_corpus(dir)`` writes them and returns ``{name: path}``. Each good file holds its own
marker word (``MARKERS[name]``) so tests can check the text came through; the PDF has one
marker per page (``PDF_PAGE_MARKERS``). Output is byte-for-byte deterministic (fixed dates,
fixed zip timestamps, seeded random bytes), so content hashes are stable across runs.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import re
import shutil
import struct
import zipfile
import zlib
from email.message import EmailMessage
from pathlib import Path

from tests.ingest.msg_writer import write_cfb, write_msg

FIXED_DATE = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
ZIP_DATE = (2024, 1, 2, 3, 4, 6)

PDF_PAGE_MARKERS = {1: "zebrafish-pdf-one", 2: "zebrafish-pdf-two", 3: "zebrafish-pdf-three"}
MARKERS = {
    "pdf": PDF_PAGE_MARKERS[1],
    "docx": "zebrafish-docx",
    "pptx": "zebrafish-pptx",
    "xlsx": "zebrafish-xlsx",
    "html": "zebrafish-html",
    "md": "zebrafish-md",
    "txt": "zebrafish-txt",
    "txt_latin1": "zebrafish-latin1",
    "txt_utf16": "zebrafish-utf16",
    "csv": "zebrafish-csv",
    "tsv": "zebrafish-tsv",
    "eml": "zebrafish-eml",
    "msg": "zebrafish-msg",
    "epub": "zebrafish-epub",
    "odt": "zebrafish-odt",
    "rtf": "zebrafish-rtf",
    "json": "zebrafish-json",
    "xml": "zebrafish-xml",
}
"""Good files: name -> marker word found in the parsed text."""

EXPECTED_TYPES = {
    **{name: name for name in MARKERS},
    "txt_latin1": "txt",
    "txt_utf16": "txt",
    "docx_as_pdf": "docx",
}
"""detect_type result for each good (or mislabelled but good) file."""

BAD_FILES = {
    "encrypted_pdf": "encrypted",
    "encrypted_docx": "encrypted",
    "truncated_pdf": "corrupt",
    "zip_bomb_docx": "too_large",
    "empty": "empty",
    "whitespace": "empty",
    "png": "empty" if shutil.which("tesseract") else "ocr_unavailable",  # 2x2 px: no text
    "random_bin": "unsupported_type",
}
"""Bad files: name -> rejection code with default settings."""

ZIP_BOMB_INFLATED_MB = 32
"""The zip bomb's member inflates to this many MiB from a few dozen KiB on disk."""

_SENTENCE = "This paragraph exists so that the parser sees ordinary narrative prose here."


def make_corpus(directory: Path) -> dict[str, Path]:
    """Write every fixture file into ``directory``; return ``{name: path}``."""
    directory.mkdir(parents=True, exist_ok=True)
    docx = _docx()
    pdf = _pdf()
    files: dict[str, tuple[str, bytes]] = {
        "pdf": ("report.pdf", pdf),
        "docx": ("memo.docx", docx),
        "pptx": ("deck.pptx", _pptx()),
        "xlsx": ("figures.xlsx", _xlsx()),
        "html": ("page.html", _html().encode("utf-8")),
        "md": ("notes.md", _md().encode("utf-8")),
        "txt": ("plain.txt", _txt("zebrafish-txt", "Naïve café in Zürich.").encode("utf-8")),
        "txt_latin1": ("latin1.txt", _latin1().encode("latin-1")),
        "txt_utf16": ("utf16.txt", _txt("zebrafish-utf16", "Grüße aus Köln.").encode("utf-16")),
        "csv": ("table.csv", _delimited(",", "zebrafish-csv").encode("utf-8")),
        "tsv": ("table.tsv", _delimited("\t", "zebrafish-tsv").encode("utf-8")),
        "eml": ("mail.eml", _eml()),
        "msg": ("outlook.msg", _msg()),
        "epub": ("book.epub", _epub()),
        "odt": ("letter.odt", _odt()),
        "rtf": ("legacy.rtf", _rtf()),
        "json": ("records.json", _json().encode("utf-8")),
        "xml": ("catalog.xml", _xml().encode("utf-8")),
        # mislabelled, broken and hostile files
        "docx_as_pdf": ("mislabelled.pdf", docx),
        "encrypted_pdf": ("locked.pdf", _encrypted_pdf()),
        "encrypted_docx": ("locked.docx", _encrypted_ooxml()),
        "truncated_pdf": ("truncated.pdf", pdf[: len(pdf) * 2 // 5]),
        "zip_bomb_docx": ("bomb.docx", _zip_bomb(docx)),
        "empty": ("empty.txt", b""),
        "whitespace": ("blank.txt", b"  \n\t\r\n   \n"),
        "png": ("picture.png", _png()),
        "random_bin": ("blob.bin", random.Random(7).randbytes(4096)),
    }
    paths = {}
    for name, (filename, data) in files.items():
        path = directory / filename
        path.write_bytes(data)
        paths[name] = path
    return paths


def write_big_text(path: Path, megabytes: float) -> Path:
    """A large plain-text file of prose paragraphs (slow to parse, well under size limits)."""
    # distinct paragraphs (unstructured caches its NLP per text) of ordinary prose, so each
    # one goes through the sentence and part-of-speech models
    paragraph = "This is paragraph {n}, written so that the parser sees ordinary narrative prose. "
    paragraph += " ".join([_SENTENCE] * 3)
    count = int(megabytes * 1024 * 1024 / (len(paragraph) + 8)) + 1
    text = "\n\n".join(paragraph.format(n=n) for n in range(count))
    path.write_text(text, encoding="utf-8")
    return path


def write_long_docx(path: Path, paragraphs: int) -> Path:
    """A DOCX of many short paragraphs: small on disk, hundreds of MiB once parsed."""
    source = zipfile.ZipFile(io.BytesIO(_docx()))
    document = source.read("word/document.xml").decode("utf-8")
    head, rest = document.split("<w:body>", 1)
    tail = rest[rest.index("<w:sectPr") :]
    body = "".join(
        f"<w:p><w:r><w:t>Paragraph {n} of the long report.</w:t></w:r></w:p>"
        for n in range(paragraphs)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "word/document.xml":
                data = f"{head}<w:body>{body}{tail}".encode()
            archive.writestr(info.filename, data, compresslevel=1)
    path.write_bytes(buffer.getvalue())
    return path


# --- office formats ----------------------------------------------------------------------


def _normalised_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed timestamps and attributes, keeping member order and methods."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            fixed.compress_type = info.compress_type
            fixed.external_attr = 0o644 << 16
            fixed.create_system = 3
            data = source.read(info)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time
                data = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(<)", rb"\g<1>2024-01-02T03:04:05Z\g<2>", data
                )
            target.writestr(fixed, data)
    return out.getvalue()


def _docx() -> bytes:
    from docx import Document

    document = Document()
    props = document.core_properties
    props.title, props.author = "Fixture DOCX Title", "Fixture Author"
    props.created = props.modified = props.last_printed = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1
    document.add_heading("Quarterly Operations Memo", level=1)
    document.add_paragraph(f"The zebrafish-docx programme is on track. {_SENTENCE}")
    document.add_heading("Figures", level=2)
    table = document.add_table(rows=2, cols=2)
    for row, cells in enumerate([("Metric", "Value"), ("docx-table-cell", "42")]):
        for col, text in enumerate(cells):
            table.cell(row, col).text = text
    buffer = io.BytesIO()
    document.save(buffer)
    return _normalised_zip(buffer.getvalue())


def _pptx() -> bytes:
    from pptx import Presentation

    deck = Presentation()
    props = deck.core_properties
    props.title = "Fixture Deck"
    props.created = props.modified = props.last_printed = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1
    for number, body in ((1, "Opening remarks for the quarter."), (2, "The zebrafish-pptx plan.")):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {number} heading"
        slide.placeholders[1].text = body
    buffer = io.BytesIO()
    deck.save(buffer)
    return _normalised_zip(buffer.getvalue())


def _xlsx() -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.properties.created = workbook.properties.modified = FIXED_DATE.replace(tzinfo=None)
    workbook.properties.title = "Fixture Workbook"
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Budget"
    for row in (("Item", "Cost"), ("zebrafish-xlsx", 120), ("Paper", 30)):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return _normalised_zip(buffer.getvalue())


def _odt() -> bytes:
    """An OpenDocument text, written member by member (odfpy's output varies per process)."""
    ns = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" office:version="1.2"'
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content {ns}>'
        "<office:body><office:text>"
        '<text:h text:outline-level="1">Letter to the Board</text:h>'
        f"<text:p>The zebrafish-odt proposal follows. {_SENTENCE}</text:p>"
        "</office:text></office:body></office:document-content>"
    )
    meta = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-meta {ns}><office:meta>'
        "<dc:title>Fixture ODT Title</dc:title></office:meta></office:document-meta>"
    )
    styles = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-styles {ns}>'
        "<office:styles/></office:document-styles>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<manifest:manifest'
        ' xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
        ' manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/"'
        ' manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        + "".join(
            f'<manifest:file-entry manifest:full-path="{name}" manifest:media-type="text/xml"/>'
            for name in ("content.xml", "meta.xml", "styles.xml")
        )
        + "</manifest:manifest>"
    )
    return _zip(
        [
            ("mimetype", "application/vnd.oasis.opendocument.text"),
            ("META-INF/manifest.xml", manifest),
            ("content.xml", content),
            ("meta.xml", meta),
            ("styles.xml", styles),
        ]
    )


def _zip(members: list[tuple[str, str]]) -> bytes:
    """A zip with fixed timestamps; the first member is stored (ODF/EPUB ``mimetype``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index, (name, content) in enumerate(members):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED if index == 0 else zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def _epub() -> bytes:
    chapter = (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Chapter One</title></head>'
        f"<body><h1>Chapter One</h1><p>The zebrafish-epub voyage begins. {_SENTENCE}</p>"
        "</body></html>"
    )
    nav = (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        '<head><title>Contents</title></head><body><nav epub:type="toc"><ol>'
        '<li><a href="chapter1.xhtml">Chapter One</a></li></ol></nav></body></html>'
    )
    opf = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<dc:identifier id="id">urn:uuid:00000000-0000-4000-8000-000000000001</dc:identifier>'
        "<dc:title>Fixture EPUB Title</dc:title><dc:language>en</dc:language>"
        '<meta property="dcterms:modified">2024-01-02T03:04:05Z</meta></metadata>'
        '<manifest><item id="nav" href="nav.xhtml" media-type="application/xhtml+xml"'
        ' properties="nav"/><item id="c1" href="chapter1.xhtml"'
        ' media-type="application/xhtml+xml"/></manifest>'
        '<spine><itemref idref="c1"/></spine></package>'
    )
    container = (
        '<?xml version="1.0"?>\n'
        '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf"'
        ' media-type="application/oebps-package+xml"/></rootfiles></container>'
    )
    return _zip(
        [
            ("mimetype", "application/epub+zip"),
            ("META-INF/container.xml", container),
            ("OEBPS/content.opf", opf),
            ("OEBPS/nav.xhtml", nav),
            ("OEBPS/chapter1.xhtml", chapter),
        ]
    )


def _zip_bomb(docx: bytes) -> bytes:
    """A valid DOCX plus one member that inflates to ZIP_BOMB_INFLATED_MB MiB of zeros."""
    buffer = io.BytesIO(docx)
    with zipfile.ZipFile(buffer, "a") as archive:
        info = zipfile.ZipInfo("word/media/padding.bin", date_time=ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, bytes(ZIP_BOMB_INFLATED_MB * 1024 * 1024), compresslevel=9)
    return buffer.getvalue()


def _encrypted_ooxml() -> bytes:
    """The container Office writes for a password-protected DOCX (an OLE file, not a zip)."""
    info = struct.pack("<HHI", 4, 4, 0x40) + b"<encryption/>"  # agile-encryption header stub
    return write_cfb({"EncryptionInfo": info, "EncryptedPackage": bytes(range(256)) * 20})


# --- PDF ---------------------------------------------------------------------------------


def _pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title("Fixture PDF Title")
    pdf.set_margins(left=25, top=25)
    for number, marker in PDF_PAGE_MARKERS.items():
        pdf.add_page()
        pdf.set_font("helvetica", style="B", size=16)
        pdf.cell(text=f"Section {number}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(6)
        pdf.set_font("helvetica", size=11)
        for text in (_SENTENCE, f"Page {number} mentions {marker} once.", _SENTENCE):
            pdf.multi_cell(w=0, text=text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(5)
    return bytes(pdf.output())


def _encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf())))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# --- text formats ------------------------------------------------------------------------


def _txt(marker: str, extra: str) -> str:
    return f"Plain text note\n\nThe {marker} entry. {extra} {_SENTENCE}\n"


def _latin1() -> str:
    return (
        "Compte rendu de réunion\n\n"
        "Le café était servi à l'entrée; la crème brûlée a été très appréciée. "
        "Le zebrafish-latin1 projet avance. Les élèves ont présenté leurs idées à la "
        "directrice, qui a félicité l'équipe pour la qualité du travail réalisé.\n"
    )


def _html() -> str:
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Fixture HTML Title</title>"
        "</head><body><h1>Welcome page</h1>"
        f"<p>The zebrafish-html section describes the site. {_SENTENCE}</p>"
        "<ul><li>First point</li><li>Second point</li></ul></body></html>\n"
    )


def _md() -> str:
    return (
        f"# Project notes\n\nThe zebrafish-md decision was made. {_SENTENCE}\n\n"
        "## Next steps\n\n- Write the plan\n- Review the plan\n"
    )


def _delimited(separator: str, marker: str) -> str:
    rows = [("name", "quantity", "note"), (marker, "3", "first"), ("other", "5", "second")]
    return "\n".join(separator.join(row) for row in rows) + "\n"


def _json() -> str:
    records = {"title": "Inventory", "items": [{"name": "zebrafish-json", "count": 3}]}
    return json.dumps(records, indent=2) + "\n"


def _xml() -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<catalog><book><title>zebrafish-xml guide'
        "</title><author>A. Writer</author></book><book><title>Another book</title></book>"
        "</catalog>\n"
    )


def _rtf() -> bytes:
    return (
        b"{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times New Roman;}}\n"
        b"{\\b Legacy heading}\\par\n"
        b"The zebrafish-rtf paragraph is stored in rich text. " + _SENTENCE.encode() + b"\\par\n}"
    )


def _eml() -> bytes:
    message = EmailMessage()
    message["From"] = "Alice Example <alice@example.com>"
    message["To"] = "Bob Example <bob@example.com>"
    message["Subject"] = "Fixture email subject"
    message["Date"] = "Tue, 02 Jan 2024 03:04:05 +0000"
    message["Message-ID"] = "<fixture-1@example.com>"
    message.set_content(f"Hello Bob,\n\nThe zebrafish-eml figures are attached. {_SENTENCE}\n")
    return message.as_bytes()


def _msg() -> bytes:
    return write_msg(
        subject="Fixture Outlook subject",
        body=f"Hello Bob,\r\n\r\nThe zebrafish-msg review is done. {_SENTENCE}\r\n",
        sender_name="Alice Example",
        sender_email="alice@example.com",
        to_name="Bob Example",
        to_email="bob@example.com",
    )


def _png() -> bytes:
    """A valid 2x2 RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    pixels = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(pixels, 9))
        + chunk(b"IEND", b"")
    )
