"""Decide a file's type from its content: magic bytes, zip members, OLE streams, text sniffing.

The extension only picks between plain-text syntaxes (md, rst, org, csv, tsv, txt) and between
HTML and XML; a binary format is recognised by content, so a DOCX named ``.pdf`` is a DOCX.
"""

from __future__ import annotations

import codecs
import json
import re
import zipfile
from pathlib import Path

from ingest.errors import CorruptFile, EmptyFile, EncryptedFile, UnsupportedType

HEAD_BYTES = 64 * 1024
"""How much of a file detection reads (text sniffing works on this prefix)."""

ZIP_TYPES = frozenset({"docx", "pptx", "xlsx", "epub", "odt"})
TEXT_TYPES = frozenset({"html", "md", "txt", "rst", "org", "csv", "tsv", "eml", "json", "xml"})
IMAGE_TYPES = frozenset({"png", "jpg", "tiff", "bmp", "webp", "heic"})
"""Read by OCR (``ingest.ocr``); without Tesseract they fail as ``ocr_unavailable``."""

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Plain-text syntaxes told apart only by their extension.
_TEXT_BY_EXT = {
    ".md": "md",
    ".markdown": "md",
    ".mdown": "md",
    ".mkd": "md",
    ".rst": "rst",
    ".org": "org",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
}
_PREFERRED_CODEPAGES = ("cp1252", "iso8859_15", "latin_1")
_HTML_EXTS = frozenset({".html", ".htm", ".xhtml", ".shtml"})
_XML_EXTS = frozenset({".xml", ".xsl", ".xslt", ".xsd", ".rss", ".atom", ".opml"})
_JSON_EXTS = frozenset({".json", ".ndjson", ".jsonl", ".geojson"})

# (magic prefix, offset, what it is, image type or None when never supported). Short prefixes
# that plain text can start with ("BM", "MZ", ...) count only when the content is not text.
_BINARY_MAGIC: tuple[tuple[bytes, int, str, str | None], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG image", "png"),
    (b"\xff\xd8\xff", 0, "JPEG image", "jpg"),
    (b"II*\x00", 0, "TIFF image", "tiff"),
    (b"MM\x00*", 0, "TIFF image", "tiff"),
    (b"BM", 0, "BMP image", "bmp"),
    (b"GIF8", 0, "GIF image", None),
    (b"ftypheic", 4, "HEIC image", "heic"),
    (b"ftypheix", 4, "HEIC image", "heic"),
    (b"ftypmif1", 4, "HEIF image", "heic"),
    (b"ftyp", 4, "MP4/QuickTime media", None),
    (b"\x1f\x8b", 0, "gzip archive", None),
    (b"BZh", 0, "bzip2 archive", None),
    (b"\xfd7zXZ\x00", 0, "xz archive", None),
    (b"7z\xbc\xaf\x27\x1c", 0, "7-Zip archive", None),
    (b"Rar!", 0, "RAR archive", None),
    (b"ustar", 257, "tar archive", None),
    (b"\x7fELF", 0, "ELF executable", None),
    (b"MZ", 0, "Windows executable", None),
    (b"SQLite format 3\x00", 0, "SQLite database", None),
    (b"%!PS", 0, "PostScript document", None),
    (b"ID3", 0, "MP3 audio", None),
    (b"OggS", 0, "Ogg media", None),
    (b"fLaC", 0, "FLAC audio", None),
)

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_HEADER_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60}):[ \t]?.*$")
_HTML_MARKERS = ("<!doctype html", "<html", "<head", "<body", "<meta ", "<title", "<div", "<p>")
_EMAIL_HINTS = frozenset({"date", "message-id", "received", "mime-version", "return-path"})


def detect_type(path: Path, *, ocr: bool | str = False) -> str:  # noqa: ARG001
    """Return the type of ``path`` (``pdf``, ``docx``, ``txt``, ...), decided from its content.

    Raises ``EmptyFile`` (0 bytes or whitespace only), ``UnsupportedType`` (with a message
    naming what the file is), ``EncryptedFile`` (password-protected Office container) or
    ``CorruptFile`` (a container that cannot be opened). Images, legacy Office files and
    archives (``zip``, ``tar``) are recognised whatever readers are installed: the parser
    reports a missing one (``ocr`` is accepted for compatibility and ignored).
    """
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    if not head:
        raise EmptyFile("the file is empty (0 bytes)")
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(_ZIP_MAGICS):
        return _zip_type(path)
    if head.startswith(_OLE_MAGIC):
        return _ole_type(path)
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        kind = {b"WAVE": "WAV audio", b"AVI ": "AVI video"}[head[8:12]]
        raise UnsupportedType(f"unsupported file type: {kind}")
    from ingest.archives import is_tar

    if is_tar(path, head):
        return "tar"
    text = decode_text(head, partial=True)
    for magic, offset, what, image_type in _BINARY_MAGIC:
        if head[offset : offset + len(magic)] == magic and (len(magic) > 3 or text is None):
            if image_type:
                return image_type
            raise UnsupportedType(f"unsupported file type: {what}")
    if text is None:
        raise UnsupportedType(f"unsupported file type: {_describe_binary(head)}")
    if not text.strip():
        raise EmptyFile("the file holds only whitespace")
    return _text_type(text, path.suffix.lower())


def decode_text(data: bytes, *, partial: bool = False) -> str | None:
    """Decode text bytes of unknown encoding; ``None`` when they look binary.

    Honours a BOM (UTF-8/16/32), recognises BOM-less UTF-16 by its zero bytes, then tries
    strict UTF-8, then charset-normalizer (latin-1, cp1252, ...). ``partial`` tolerates a
    multi-byte character cut at the end of ``data`` (a prefix of a file).
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    if b"\x00" in data:
        utf16 = _bomless_utf16(data)
        return None if utf16 is None else data.decode(utf16, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if partial and exc.start >= len(data) - 3:
            return data[: exc.start].decode("utf-8")
    text = _guess_single_byte(data)
    if text is None:
        return None
    controls = sum(1 for ch in text[:HEAD_BYTES] if ord(ch) < 32 and ch not in "\t\n\r\f\v\x1b")
    return None if controls > len(text[:HEAD_BYTES]) * 0.05 else text


def _guess_single_byte(data: bytes) -> str | None:
    """Decode with charset-normalizer; among equally good guesses prefer Western code pages.

    Short Western-European texts score the same in cp1250 and cp1252, and picking the first
    turns "à" into "ŕ"; a text that really is Central European scores better in its own.
    """
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        return None
    best = matches[0]
    tied = [
        m
        for m in matches
        if m.percent_chaos <= best.percent_chaos + 0.5
        and m.percent_coherence >= best.percent_coherence - 0.5
    ]
    for preferred in _PREFERRED_CODEPAGES:
        for match in tied:
            if match.encoding == preferred:
                return str(match)
            if preferred in match.could_be_from_charset:
                try:
                    return data.decode(preferred)
                except UnicodeDecodeError:
                    continue
    return str(best)


def _bomless_utf16(data: bytes) -> str | None:
    """``utf-16-le``/``-be`` when zero bytes sit on one parity like ASCII in UTF-16, else None."""
    sample = data[: 4096 - 4096 % 2]
    half = max(len(sample) // 2, 1)
    even_zero = sample[0::2].count(0) / half
    odd_zero = sample[1::2].count(0) / half
    if odd_zero > 0.3 and even_zero < 0.05:
        return "utf-16-le"
    if even_zero > 0.3 and odd_zero < 0.05:
        return "utf-16-be"
    return None


def _text_type(text: str, ext: str) -> str:
    if ext in _TEXT_BY_EXT:
        return _TEXT_BY_EXT[ext]
    if ext == ".eml" or _looks_like_email(text):
        return "eml"
    stripped = text.lstrip()
    if ext in _HTML_EXTS:
        return "html"
    if stripped.startswith("<"):
        if ext in _XML_EXTS:
            return "xml"
        lowered = stripped[:4096].lower()
        if any(marker in lowered for marker in _HTML_MARKERS):
            return "html"
        if stripped.startswith("<?xml") or re.match(r"<[A-Za-z_][\w.:-]*[\s/>]", stripped):
            return "xml"
    if stripped[:1] in ("{", "[") and (ext in _JSON_EXTS or _parses_as_json(stripped)):
        return "json"
    return "txt"


def _parses_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _looks_like_email(text: str) -> bool:
    """An RFC 822 header block first: From plus another typical mail header."""
    names: set[str] = set()
    for line in text.lstrip("\r\n").splitlines()[:200]:
        if not line.strip():
            break
        if line[:1] in (" ", "\t"):
            continue  # folded header continuation
        match = _HEADER_LINE.match(line)
        if match is None:
            return False
        names.add(match.group(1).lower())
    return "from" in names and len(names) >= 3 and bool(names & _EMAIL_HINTS)


def _zip_type(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            mimetype = b""
            if "mimetype" in names and archive.getinfo("mimetype").file_size < 256:
                mimetype = archive.read("mimetype").strip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CorruptFile(f"damaged zip container ({exc})") from None
    if "[Content_Types].xml" in names:
        if "word/document.xml" in names:
            return "docx"
        if "ppt/presentation.xml" in names:
            return "pptx"
        if "xl/workbook.xml" in names:
            return "xlsx"
        raise UnsupportedType("unsupported file type: Office Open XML package of unknown kind")
    if mimetype == b"application/epub+zip" or "META-INF/container.xml" in names:
        return "epub"
    if mimetype == b"application/vnd.oasis.opendocument.text":
        return "odt"
    if mimetype.startswith(b"application/vnd.oasis.opendocument."):
        kind = mimetype.decode("ascii", "replace").rsplit(".", 1)[-1]
        raise UnsupportedType(f"unsupported file type: OpenDocument {kind} (only text is)")
    return "zip"  # an archive: each member becomes a document (ingest.containers)


def _ole_type(path: Path) -> str:
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            streams = {"/".join(entry) for entry in ole.listdir(streams=True, storages=False)}
    except OSError as exc:
        raise CorruptFile(f"damaged OLE compound file ({exc})") from None
    tops = {name.split("/", 1)[0] for name in streams}
    if {"EncryptionInfo", "EncryptedPackage"} <= tops:
        raise EncryptedFile("password-protected Office document (encrypted package)")
    if "__properties_version1.0" in tops or any(t.startswith("__substg1.0_") for t in tops):
        return "msg"
    if "Workbook" in tops or "Book" in tops:
        return "xls"
    if "WordDocument" in tops:
        return "doc"  # read through LibreOffice (ingest.convert)
    if "PowerPoint Document" in tops:
        return "ppt"
    raise UnsupportedType("unsupported file type: OLE compound file of unknown kind")


def _describe_binary(head: bytes) -> str:
    """A short libmagic description of binary data, for rejection messages."""
    try:
        import magic

        description = str(magic.from_buffer(head)).split(",")[0].strip()
    except Exception:  # libmagic missing or failing: a generic name is enough here
        description = ""
    if not description or description in ("data", "ASCII text"):
        return "binary data"
    return description
