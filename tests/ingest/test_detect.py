"""File type detection: content decides, the extension only picks between text syntaxes."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from ingest.detect import decode_text, detect_type
from ingest.errors import CorruptFile, EmptyFile, EncryptedFile, UnsupportedType
from tests.ingest.fixtures import EXPECTED_TYPES
from tests.ingest.msg_writer import write_cfb


@pytest.mark.parametrize("name", sorted(EXPECTED_TYPES))
def test_corpus_types(corpus: dict[str, Path], name: str) -> None:
    assert detect_type(corpus[name]) == EXPECTED_TYPES[name]


def test_docx_named_pdf_is_docx(corpus: dict[str, Path]) -> None:
    assert corpus["docx_as_pdf"].suffix == ".pdf"
    assert detect_type(corpus["docx_as_pdf"]) == "docx"


@pytest.mark.parametrize("name", ["empty", "whitespace"])
def test_empty_files(corpus: dict[str, Path], name: str) -> None:
    with pytest.raises(EmptyFile):
        detect_type(corpus[name])


def test_png_is_an_image_whatever_readers_exist(corpus: dict[str, Path]) -> None:
    # detection never looks for tesseract: the parser reports a missing OCR (ocr_unavailable)
    assert detect_type(corpus["png"]) == "png"
    assert detect_type(corpus["png"], ocr=False) == "png"


def test_random_bytes_are_unsupported(corpus: dict[str, Path]) -> None:
    with pytest.raises(UnsupportedType, match="unsupported file type"):
        detect_type(corpus["random_bin"])


def test_encrypted_office_container(corpus: dict[str, Path]) -> None:
    with pytest.raises(EncryptedFile, match="password-protected"):
        detect_type(corpus["encrypted_docx"])


def test_legacy_word_is_recognised(tmp_path: Path) -> None:
    # detection never looks for LibreOffice: the parser reports it missing (converter_unavailable)
    path = tmp_path / "old.doc"
    path.write_bytes(write_cfb({"WordDocument": b"\x00" * 600, "1Table": b"\x00" * 100}))
    assert detect_type(path) == "doc"


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet"}, "OpenDocument"),
        ({"[Content_Types].xml": b"<Types/>", "foo/bar.xml": b"<x/>"}, "Office Open XML"),
    ],
)
def test_unsupported_zips(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    path = tmp_path / "archive.docx"
    path.write_bytes(_zip(members))
    with pytest.raises(UnsupportedType, match=message):
        detect_type(path)


def test_plain_zip_and_tar_are_archives(tmp_path: Path) -> None:
    import tarfile

    path = tmp_path / "archive.docx"
    path.write_bytes(_zip({"a.txt": b"hello"}))
    assert detect_type(path) == "zip"
    for mode, name in (("w", "plain.tar"), ("w:gz", "packed.tgz"), ("w:xz", "packed.bin")):
        target = tmp_path / name
        with tarfile.open(target, mode) as archive:  # type: ignore[call-overload]
            archive.add(path, arcname="a.zip")
        assert detect_type(target) == "tar", mode
    gz = tmp_path / "single.gz"
    import gzip

    gz.write_bytes(gzip.compress(b"just text, not a tar"))
    with pytest.raises(UnsupportedType, match="gzip"):
        detect_type(gz)


def test_damaged_zip_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04" + b"\x14\x00" * 200)
    with pytest.raises(CorruptFile, match="zip"):
        detect_type(path)


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("page.txt", "<!DOCTYPE html><html><body><p>Hi</p></body></html>", "html"),
        ("data", '<?xml version="1.0"?><root><a>1</a></root>', "xml"),
        ("feed.xml", "<html><body>looks like html</body></html>", "xml"),
        ("noext", json.dumps({"a": [1, 2]}), "json"),
        ("broken.txt", '{"a": [1, 2', "txt"),
        ("rows.ndjson", '{"a": 1}\n{"a": 2}\n', "json"),
        ("notes.md", "<div>markdown may start with markup</div>\n\n# Title", "md"),
        ("table.csv", "just some words, nothing tabular", "csv"),
        ("table.tab", "a\tb\n1\t2\n", "tsv"),
        ("doc.rst", "Title\n=====\n\nText.", "rst"),
        ("doc.org", "* Heading\nText.", "org"),
        ("code.py", "import os\nprint(os.getcwd())\n", "txt"),
        ("car.txt", "BMW annual report: sales rose.", "txt"),
        ("exe.txt", "MZ is a two-letter abbreviation used in this note.", "txt"),
        (
            "saved-mail.txt",
            "From: a@example.com\nTo: b@example.com\nSubject: Hi\nDate: Tue, 2 Jan 2024\n\nBody",
            "eml",
        ),
        ("letter.txt", "From: the desk of the CEO\n\nDear all, ...", "txt"),
    ],
)
def test_text_sniffing(tmp_path: Path, filename: str, content: str, expected: str) -> None:
    path = tmp_path / filename
    path.write_text(content, encoding="utf-8")
    assert detect_type(path) == expected


def test_bomless_utf16_is_text(tmp_path: Path) -> None:
    path = tmp_path / "le.txt"
    path.write_bytes("Plain words in UTF-16 without a byte order mark.".encode("utf-16-le"))
    assert detect_type(path) == "txt"
    whitespace = tmp_path / "blank16.txt"
    whitespace.write_bytes("   \n\t ".encode("utf-16"))
    with pytest.raises(EmptyFile):
        detect_type(whitespace)


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Le café était servi à l'entrée, la crème brûlée était très appréciée.", "cp1252"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy. Děkujeme za Vaši zprávu.", "cp1250"),
        ("Grüße aus Köln, schöne Straße.", "utf-8-sig"),
        ("Grüße aus Köln, schöne Straße.", "utf-16"),
        ("Grüße aus Köln, schöne Straße.", "utf-16-be"),
        ("Grüße aus Köln, schöne Straße.", "utf-32"),
    ],
)
def test_decode_text(text: str, encoding: str) -> None:
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    assert decode_text(data) == text


def test_decode_text_refuses_binary() -> None:
    assert decode_text(bytes(range(256)) * 4) is None


def test_decode_prefix_tolerates_cut_character() -> None:
    data = "naïve café".encode()[:-1]  # the é is cut in half
    assert decode_text(data, partial=True) == "naïve caf"
