"""OCR with Tesseract: images (every frame of a multi-page TIFF), scanned PDFs, and the pages
without a text layer inside otherwise digital PDFs.

Tesseract is driven directly (``unstructured_pytesseract``, unstructured's own fork of
pytesseract): one ``image_to_data`` call per page, its words grouped into Tesseract's
paragraphs, and those classified by unstructured's text partitioner (titles, list items,
narrative text). Measured against ``partition_image(strategy="ocr_only")`` on rendered pages
it reads the same characters at the same speed (Tesseract's time dominates) but keeps
Tesseract's paragraphs and lets every page of a PDF or TIFF keep its number.

PDF pages are rendered with pypdfium2 at ``RENDER_DPI`` in grey. A page is OCRed when its
text layer yields fewer than ``MIN_PAGE_CHARS`` characters and it draws an image (blank and
drawing-only pages are not).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import CorruptFile, OcrUnavailable
from ingest.readers import OCR_PACKAGE, language_package, missing_languages, tesseract_path
from ingest.settings import ParseSettings

if TYPE_CHECKING:
    from PIL.Image import Image
    from unstructured.documents.elements import Element

RENDER_DPI = 300
MIN_PAGE_CHARS = 16
"""A PDF page whose text layer has fewer characters than this is OCRed (scans often carry a
stray page number or a scanner stamp as text)."""
MAX_IMAGE_PIXELS = 200_000_000
"""Decompression-bomb guard for images (Pillow's own default warns at 89 Mpx)."""
MIN_CONFIDENCE = 0
"""Words Tesseract reports with confidence below this (it gives -1 to non-words) are dropped."""


def require_ocr(settings: ParseSettings, what: str) -> None:
    """Raise ``OcrUnavailable`` (naming what to install or set) unless OCR can run."""
    if settings.ocr is False:
        raise OcrUnavailable(f"{what} needs OCR, which is switched off (INHOUSE_PARSE__OCR=false)")
    if tesseract_path() is None:
        raise OcrUnavailable(f"{what} needs OCR: install the {OCR_PACKAGE} package (Tesseract)")
    missing = missing_languages(settings.ocr_languages)
    if missing:
        packages = ", ".join(language_package(lang) for lang in missing)
        raise OcrUnavailable(
            f"{what} needs OCR in {'+'.join(missing)}: install {packages}"
            " (or change INHOUSE_PARSE__OCR_LANGUAGES)"
        )


def ocr_available(settings: ParseSettings) -> bool:
    try:
        require_ocr(settings, "this")
    except OcrUnavailable:
        return False
    return True


def ocr_image_file(path: Path, settings: ParseSettings) -> list[Element]:
    """Elements of every frame of an image file, numbered as pages from 1."""
    require_ocr(settings, "an image")
    elements: list[Element] = []
    try:
        for number, image in enumerate(_frames(path), start=1):
            elements.extend(ocr_image(image, settings, page_number=number))
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow: truncated or undecodable data
        raise CorruptFile(f"the image is damaged or cannot be decoded ({exc})") from None
    return elements


def fill_textless_pages(
    path: Path, elements: Sequence[Element], settings: ParseSettings
) -> list[Element]:
    """``elements`` of a PDF plus OCR elements for its pages without a text layer, in order.

    Raises ``OcrUnavailable`` when no page has text and OCR cannot run; a PDF with some
    text keeps what it has when OCR cannot run.
    """
    import pypdfium2 as pdfium

    chars: dict[int, int] = {}
    for element in elements:
        page = element.metadata.page_number or 1
        chars[page] = chars.get(page, 0) + len((element.text or "").strip())
    pdf = pdfium.PdfDocument(str(path))
    try:
        textless = [
            n
            for n in range(1, len(pdf) + 1)
            if chars.get(n, 0) < MIN_PAGE_CHARS and _has_image(pdf, n)
        ]
        if not textless:
            return list(elements)
        if not ocr_available(settings):
            if len(textless) < len(pdf) and sum(chars.values()) > 0:
                return list(elements)
            require_ocr(settings, "a PDF without a text layer (scanned?)")
        by_page: dict[int, list[Element]] = {}
        for number in textless:
            image = _render(pdf, number)
            by_page[number] = ocr_image(image, settings, page_number=number)
    finally:
        pdf.close()
    merged: list[Element] = []
    for element in elements:
        page = element.metadata.page_number or 1
        if page in by_page:
            continue  # a stray stamp on a scanned page: the OCR text replaces it
        merged.append(element)
    for ocr_elements in by_page.values():
        merged.extend(ocr_elements)
    merged.sort(key=lambda e: e.metadata.page_number or 1)  # stable: order within a page kept
    return merged


def ocr_image(image: Image, settings: ParseSettings, *, page_number: int) -> list[Element]:
    """Elements of one page image (titles, list items, text), tagged with ``page_number``."""
    from unstructured.partition.text import partition_text

    from ingest.partitioners import NO_LANGUAGE_DETECTION

    paragraphs = list(_paragraphs(ocr_data(image, settings.ocr_languages)))
    if not paragraphs:
        return []
    elements = partition_text(text="\n\n".join(paragraphs), **NO_LANGUAGE_DETECTION)
    for element in elements:
        element.metadata.page_number = page_number
    return elements


def ocr_data(image: Image, languages: str) -> dict[str, list[Any]]:
    """Tesseract's word table (``image_to_data``) for one page image."""
    import unstructured_pytesseract as tesseract

    # one thread per page: Tesseract's OpenMP threads spin, and slow down badly, on a machine
    # whose cores are busy (parser workers, the encoder)
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    data: dict[str, list[Any]] = tesseract.image_to_data(
        image, lang=languages, output_type=tesseract.Output.DICT
    )
    return data


def ocr_text(image: Image, languages: str = "eng") -> str:
    """The page's text, paragraphs separated by blank lines (for measurements and tests)."""
    return "\n\n".join(_paragraphs(ocr_data(image, languages)))


def _paragraphs(data: dict[str, list[Any]]) -> Iterator[str]:
    """Tesseract's paragraphs in reading order, lines joined with spaces (hyphens mended)."""
    current: tuple[int, int] | None = None
    words: list[str] = []
    for i, word in enumerate(data["text"]):
        word = (word or "").strip()
        if not word or float(data["conf"][i]) < MIN_CONFIDENCE:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]))
        if key != current and words:
            yield _join(words)
            words = []
        current = key
        words.append(word)
    if words:
        yield _join(words)


def _join(words: list[str]) -> str:
    out: list[str] = []
    for word in words:
        if out and out[-1].endswith("-") and len(out[-1]) > 1 and word[:1].islower():
            out[-1] = out[-1][:-1] + word  # a word hyphenated across a line break
        else:
            out.append(word)
    return " ".join(out)


def _frames(path: Path) -> Iterator[Image]:
    """Every frame of an image (multi-page TIFF), converted for Tesseract."""
    from PIL import Image as PILImage
    from PIL import ImageSequence

    _register_heif()
    PILImage.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    with PILImage.open(path) as image:
        for frame in ImageSequence.Iterator(image):
            yield _for_ocr(frame)


def _for_ocr(image: Image) -> Image:
    if image.mode in ("1", "L", "RGB"):
        return image.copy()
    if image.mode in ("RGBA", "LA", "P", "PA"):
        from PIL import Image as PILImage

        rgba = image.convert("RGBA")
        background = PILImage.new("RGB", rgba.size, "white")  # transparent means paper
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _register_heif() -> None:
    try:
        from pi_heif import register_heif_opener
    except ImportError:  # no HEIC decoder: Pillow reports such a file as unreadable
        return
    register_heif_opener()


def _has_image(pdf: Any, number: int) -> bool:
    """Whether a page draws any image (a blank or drawing-only page has nothing to OCR)."""
    import pypdfium2.raw as pdfium_c

    page = pdf[number - 1]
    try:
        return any(True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]))
    except Exception:  # an odd page tree: let OCR look at it
        return True
    finally:
        page.close()


def _render(pdf: Any, number: int) -> Image:
    page = pdf[number - 1]
    try:
        bitmap = page.render(scale=RENDER_DPI / 72, grayscale=True)
        return bitmap.to_pil()
    finally:
        page.close()
