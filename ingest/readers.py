"""Which optional readers this machine has: Tesseract (OCR) and LibreOffice (legacy Office).

Both are system packages (Debian ``tesseract-ocr`` plus ``tesseract-ocr-<lang>`` language
packs, ``libreoffice-core`` with ``libreoffice-writer``/``-calc``/``-impress``), so ``make``
cannot install them everywhere; files that need a missing one fail with ``ocr_unavailable``
or ``converter_unavailable`` and a message naming the package. ``readers_status`` is what
``inhouse index status`` and ``/readyz`` show.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache
from typing import Any

OCR_PACKAGE = "tesseract-ocr"
CONVERTER_PACKAGE = "libreoffice-core (with libreoffice-writer, -calc, -impress)"
VERSION_TIMEOUT_S = 30.0


def tesseract_path() -> str | None:
    return shutil.which("tesseract")


def soffice_path() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


@lru_cache(maxsize=4)
def tesseract_languages(binary: str) -> frozenset[str]:
    """Installed Tesseract language packs (``eng``, ``deu``, ...)."""
    out = _run([binary, "--list-langs"])
    langs = [line.strip() for line in out.splitlines()[1:] if line.strip()]
    return frozenset(x for x in langs if re.fullmatch(r"[A-Za-z_]+", x) and x != "osd")


def missing_languages(languages: str) -> list[str]:
    """The '+'-separated ``languages`` that have no installed pack (all when no tesseract)."""
    wanted = [lang for lang in languages.split("+") if lang]
    binary = tesseract_path()
    if binary is None:
        return wanted
    installed = tesseract_languages(binary)
    return [lang for lang in wanted if lang not in installed]


def language_package(lang: str) -> str:
    """Debian package of a Tesseract language (``tesseract-ocr-deu``)."""
    return f"tesseract-ocr-{lang.lower().replace('_', '-')}"


@lru_cache(maxsize=4)
def _version(binary: str, flag: str) -> str:
    out = _run([binary, flag])
    match = re.search(r"\d+(?:\.\d+)+", out)
    return match.group(0) if match else out.splitlines()[0].strip() if out else "unknown"


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=VERSION_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout or "") + (done.stderr or "")


def readers_status(ocr_languages: str = "eng", ocr_enabled: bool = True) -> dict[str, Any]:
    """Availability, version and reach of each optional reader (runs each binary once)."""
    tesseract = tesseract_path()
    soffice = soffice_path()
    ocr: dict[str, Any] = {
        "available": tesseract is not None and ocr_enabled,
        "installed": tesseract is not None,
        "enabled": ocr_enabled,
        "package": OCR_PACKAGE,
        "formats": ["scanned pdf pages", "png", "jpeg", "tiff", "bmp", "webp", "heic"],
    }
    if tesseract is not None:
        ocr["version"] = _version(tesseract, "--version")
        ocr["languages"] = sorted(tesseract_languages(tesseract))
        ocr["missing_languages"] = missing_languages(ocr_languages)
    converter: dict[str, Any] = {
        "available": soffice is not None,
        "package": CONVERTER_PACKAGE,
        "formats": ["doc", "ppt", "xls", "rtf (when pandoc cannot read it)"],
    }
    if soffice is not None:
        converter["version"] = _version(soffice, "--version")
    return {"tesseract": ocr, "libreoffice": converter}
