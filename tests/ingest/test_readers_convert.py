"""Legacy Office through LibreOffice: a .doc made by LibreOffice itself, limits, cleanup."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from ingest import convert, readers
from ingest.errors import ConverterUnavailable, ParseTimeout
from ingest.parse import parse_file
from ingest.settings import ParseSettings
from tests.ingest import reader_fixtures as rf

needs_soffice = pytest.mark.skipif(
    readers.soffice_path() is None, reason="LibreOffice is not installed"
)


@pytest.fixture(scope="module")
def legacy_doc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Word 97-2003 .doc, made by LibreOffice from a generated DOCX."""
    folder = tmp_path_factory.mktemp("legacy")
    source = folder / "memo.docx"
    source.write_bytes(rf.docx_bytes("zebralegacy"))
    binary = readers.soffice_path()
    assert binary is not None
    subprocess.run(
        [
            binary,
            f"-env:UserInstallation={(folder / 'profile').as_uri()}",
            "--headless",
            "--convert-to",
            "doc:MS Word 97",
            "--outdir",
            str(folder),
            str(source),
        ],  # fmt: skip
        check=True,
        capture_output=True,
        timeout=300,
    )
    doc = folder / "memo.doc"
    assert doc.read_bytes()[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    return doc


@needs_soffice
def test_legacy_doc_is_converted_and_cleaned_up(
    legacy_doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    document = parse_file(legacy_doc, ParseSettings())
    assert document.file_type == "doc"
    assert "zebralegacy" in " ".join(e.text for e in document.elements)
    assert list(tmp_path.iterdir()) == []  # the converter's profile and copies are gone


@needs_soffice
def test_conversion_timeout(
    legacy_doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ParseTimeout, match="LibreOffice took longer"):
        parse_file(legacy_doc, ParseSettings(convert_timeout_s=0.05))
    assert list(tmp_path.iterdir()) == []


def test_without_libreoffice_legacy_files_fail_as_converter_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.ingest.msg_writer import write_cfb

    monkeypatch.setattr(convert, "soffice_path", lambda: None)
    path = tmp_path / "old.doc"
    path.write_bytes(write_cfb({"WordDocument": b"\x00" * 600, "1Table": b"\x00" * 100}))
    with pytest.raises(ConverterUnavailable, match="install libreoffice-core") as caught:
        parse_file(path, ParseSettings())
    assert caught.value.code == "converter_unavailable"


def test_readers_status_names_packages_and_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    status = readers.readers_status("eng")
    assert status["tesseract"]["package"] == "tesseract-ocr"
    if readers.tesseract_path() is not None:
        assert status["tesseract"]["available"] and "eng" in status["tesseract"]["languages"]
        assert status["tesseract"]["version"][0].isdigit()
    if readers.soffice_path() is not None:
        assert status["libreoffice"]["available"]
        assert status["libreoffice"]["version"][0].isdigit()
    monkeypatch.setattr(readers, "soffice_path", lambda: None)
    monkeypatch.setattr(readers, "tesseract_path", lambda: None)
    missing = readers.readers_status("eng")
    assert not missing["libreoffice"]["available"] and not missing["tesseract"]["available"]
    assert "libreoffice-core" in missing["libreoffice"]["package"]


def test_a_missing_libreoffice_module_is_named(tmp_path: Path) -> None:
    program = tmp_path / "program"
    program.mkdir()
    (program / "soffice").write_text("")
    (program / "libswlo.so").write_text("")  # writer only, like libreoffice-core + -writer
    binary = str(program / "soffice")
    assert convert._missing_component(binary, "doc") is None
    assert convert._missing_component(binary, "xls") == "libreoffice-calc"
    assert convert._missing_component(binary, "ppt") == "libreoffice-impress"
