"""Generated files for the optional readers: OCR images and PDFs, archives, e-mails.

Small on purpose (OCR and LibreOffice are CPU-heavy): a few lines of large text per image.
Each writer returns bytes; marker words are ``zebra``-prefixed so searches find them.
"""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from email.message import EmailMessage

from PIL import Image, ImageDraw, ImageFont

from tests.ingest.fixtures import ZIP_DATE

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
SENTENCE = "This paragraph exists so that the parser sees ordinary narrative prose here."


def text_image(lines: list[str], *, mode: str = "L", width: int = 1400) -> Image.Image:
    """Black text on white, 36 px type (about 12 pt at 220 dpi): easy for Tesseract."""
    font = _font(36)
    image = Image.new(mode, (width, 80 + 60 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((40, 40 + 60 * number), line, font=font, fill="black")
    return image


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:  # no DejaVu (Debian fonts-dejavu-core): Pillow's own scalable font
        return ImageFont.load_default(size=size)


def image_bytes(lines: list[str], fmt: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    text_image(lines, mode="RGB").save(buffer, format=fmt, **save)
    return buffer.getvalue()


def multipage_tiff(pages: list[list[str]]) -> bytes:
    images = [text_image(lines) for lines in pages]
    buffer = io.BytesIO()
    images[0].save(buffer, format="TIFF", save_all=True, append_images=images[1:])
    return buffer.getvalue()


def image_pdf(pages: list[list[str]]) -> bytes:
    """A scanned PDF: one page image per page, no text layer."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(_fixed_date())
    for lines in pages:
        pdf.add_page()
        pdf.image(text_image(lines), x=10, y=20, w=190)
    return bytes(pdf.output())


def mixed_pdf(text_page: str, scanned_lines: list[str]) -> bytes:
    """Page 1 with a text layer (``text_page``), page 2 a scan of ``scanned_lines``."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(_fixed_date())
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(w=0, text=f"{text_page} {SENTENCE}")
    pdf.add_page()
    pdf.image(text_image(scanned_lines), x=10, y=20, w=190)
    return bytes(pdf.output())


def _fixed_date() -> object:
    from tests.ingest.fixtures import FIXED_DATE

    return FIXED_DATE


def docx_bytes(marker: str) -> bytes:
    from docx import Document

    document = Document()
    document.add_heading("Legacy memo", level=1)
    document.add_paragraph(f"The {marker} budget was approved. {SENTENCE}")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def zip_bytes(members: list[tuple[str, bytes]], *, encrypted: set[str] = frozenset()) -> bytes:
    """A zip of ``members``; names in ``encrypted`` get the encryption flag (data unchanged)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, data)
    data = bytearray(buffer.getvalue())
    for name in encrypted:  # set bit 0 of the general purpose flags, local and central header
        raw = name.encode()
        for signature, flag_offset, name_offset in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
            start = 0
            while (at := data.find(signature, start)) >= 0:
                if data[at + name_offset : at + name_offset + len(raw)] == raw:
                    data[at + flag_offset] |= 0x01
                start = at + 4
    return bytes(data)


def zip_with_symlink(name: str, target: str, others: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, data in others:
            archive.writestr(zipfile.ZipInfo(member, ZIP_DATE), data)
        info = zipfile.ZipInfo(name, ZIP_DATE)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target)
    return buffer.getvalue()


def tar_bytes(
    members: list[tuple[str, bytes]], *, hostile: bool = False, mode: str = "w:gz"
) -> bytes:
    """A (gzipped) tar of ``members``; ``hostile`` adds a symlink, a device and a FIFO."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
        if hostile:
            for name, kind in (("link", tarfile.SYMTYPE), ("dev", tarfile.CHRTYPE)):
                info = tarfile.TarInfo(name)
                info.type, info.mtime = kind, 1_700_000_000
                info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
                archive.addfile(info)
            fifo = tarfile.TarInfo("pipe")
            fifo.type = tarfile.FIFOTYPE
            archive.addfile(fifo)
    return buffer.getvalue()


def eml_with_attachments(body: str, attachments: list[tuple[str, str, bytes]]) -> bytes:
    """A message with ``(filename, mime type, data)`` attachments."""
    message = EmailMessage()
    message["From"] = "Alice Example <alice@example.com>"
    message["To"] = "Bob Example <bob@example.com>"
    message["Subject"] = "Quarterly papers"
    message["Date"] = "Tue, 02 Jan 2024 03:04:05 +0000"
    message["Message-ID"] = "<fixture-attach@example.com>"
    message.set_content(f"Hello Bob,\n\n{body} {SENTENCE}\n")
    for filename, mime, data in attachments:
        maintype, subtype = mime.split("/", 1)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()
