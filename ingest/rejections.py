"""Parser exceptions turned into per-file rejections, each with a short human message.

The partitioners raise whatever their libraries raise (pdfminer, pypdf, lxml, zipfile...);
``rejection_for`` maps each to the ``FileRejected`` class whose ``code`` the report shows.
"""

from __future__ import annotations

from ingest.errors import CorruptFile, EncryptedFile, FileRejected, ParseError, TooLarge

_CORRUPT_EXCEPTIONS = frozenset(
    {
        "BadZipFile", "PackageNotFoundError", "XMLSyntaxError", "ExpatError", "PDFSyntaxError",
        "PSException", "PdfReadError", "UnprocessableEntityError", "UnicodeDecodeError",
        "EOFError", "InvalidFileException", "XLRDError", "CompDocError",
    }
)  # fmt: skip
_ENCRYPTED_EXCEPTIONS = frozenset(
    {"PDFPasswordIncorrect", "PDFEncryptionError", "FileNotDecryptedError", "DecryptionError"}
)


def rejection_for(exc: BaseException) -> FileRejected:
    """Turn a parser exception into a rejection with a short message (no traceback)."""
    if isinstance(exc, FileRejected):
        return exc
    names = {cls.__name__ for cls in type(exc).__mro__}
    detail = short_reason(exc)
    if isinstance(exc, MemoryError):
        return TooLarge("the parser ran out of memory on this file")
    if isinstance(exc, RecursionError):
        return CorruptFile("the document is nested too deeply to parse")
    if names & _ENCRYPTED_EXCEPTIONS or "encrypted" in detail.lower():
        return EncryptedFile(f"the file is password-protected ({detail})")
    if names & _CORRUPT_EXCEPTIONS or type(exc).__module__ == "zlib":
        return CorruptFile(f"the file is damaged or malformed ({detail})")
    if isinstance(exc, PermissionError):
        return ParseError(f"the file cannot be read: permission denied ({detail})")
    if isinstance(exc, KeyError) and "archive" in detail:
        return CorruptFile(f"the document package is missing a part ({detail})")
    return ParseError(f"the parser failed: {detail}")


def short_reason(exc: BaseException, limit: int = 200) -> str:
    """The exception's type and the first line of its message, at most ``limit`` characters."""
    first_line = next((line for line in str(exc).splitlines() if line.strip()), "")
    text = f"{type(exc).__name__}: {first_line.strip()}" if first_line else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
