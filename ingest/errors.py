"""Ingestion errors: a small hierarchy, each with a stable ``code``.

IngestError
├── FileRejected            a file that cannot be indexed; ends as "failed" in the report
│   ├── UnsupportedType     unsupported_type
│   ├── EncryptedFile       encrypted
│   ├── EmptyFile           empty
│   ├── CorruptFile         corrupt
│   ├── TooLarge            too_large  (size, zip-bomb, pages, memory cap)
│   ├── ParseTimeout        timeout
│   ├── OcrUnavailable      ocr_unavailable (needs OCR: tesseract missing or switched off)
│   ├── ConverterUnavailable converter_unavailable (legacy Office format: no LibreOffice)
│   ├── ParseError          parse_error (anything else the parser raised)
│   └── OutsideRoot         outside_root (a symlink or path that leads out of the scanned
│                           folder or into the data dir: never read)
└── IndexError_             problems with the index itself
    ├── EmbedderMismatch    embedder_mismatch
    ├── CollectionNotFound  collection_not_found
    └── IndexUnavailable    index_unavailable
"""

from __future__ import annotations


class IngestError(Exception):
    """Base of every ingestion error; ``code`` is stable and machine-readable."""

    code = "ingest_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FileRejected(IngestError):
    """A file that cannot be indexed; the run goes on and reports it."""

    code = "parse_error"


class UnsupportedType(FileRejected):
    code = "unsupported_type"


class EncryptedFile(FileRejected):
    code = "encrypted"


class EmptyFile(FileRejected):
    code = "empty"


class CorruptFile(FileRejected):
    code = "corrupt"


class TooLarge(FileRejected):
    code = "too_large"


class ParseTimeout(FileRejected):
    code = "timeout"


class OcrUnavailable(FileRejected):
    code = "ocr_unavailable"


class ConverterUnavailable(FileRejected):
    code = "converter_unavailable"


class ParseError(FileRejected):
    code = "parse_error"


class OutsideRoot(FileRejected):
    code = "outside_root"


REJECTION_CODES: tuple[str, ...] = (
    "unsupported_type",
    "encrypted",
    "empty",
    "corrupt",
    "too_large",
    "timeout",
    "ocr_unavailable",
    "converter_unavailable",
    "parse_error",
    "outside_root",
)

_REJECTION_BY_CODE: dict[str, type[FileRejected]] = {
    cls.code: cls
    for cls in (
        UnsupportedType,
        EncryptedFile,
        EmptyFile,
        CorruptFile,
        TooLarge,
        ParseTimeout,
        OcrUnavailable,
        ConverterUnavailable,
    )
}


def rejection_from_code(code: str, message: str) -> FileRejected:
    """Rebuild a rejection sent across a process boundary as (code, message)."""
    return _REJECTION_BY_CODE.get(code, ParseError)(message)


class IndexError_(IngestError):  # noqa: N801  (avoid shadowing the builtin IndexError)
    """The index (Chroma + manifest) cannot serve the request."""

    code = "index_error"


class EmbedderMismatch(IndexError_):
    """A collection was built with another embedder than the one in use."""

    code = "embedder_mismatch"


class CollectionNotFound(IndexError_):
    code = "collection_not_found"


class IndexUnavailable(IndexError_):
    code = "index_unavailable"
