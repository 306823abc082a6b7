"""OCR on rendered pages with known text: character accuracy and pages per second.

Renders ``--pages`` A4 pages of generated prose with Pillow (DejaVu Serif, 11 pt at 300 dpi,
the resolution ``ingest.ocr`` renders PDF pages at), then reads them back with:

* ``direct``: ``ingest.ocr`` (unstructured_pytesseract ``image_to_data``, Tesseract's
  paragraphs), what Inhouse uses;
* ``unstructured``: ``partition_image(strategy="ocr_only")``.

Character accuracy is ``1 - edit distance / reference length`` on whitespace-normalised text.

    python -m tests.bench.ocr_bench --pages 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"
WORDS = (
    "contract payment invoice supplier quarterly revenue shipment delivery warranty clause "
    "termination notice period liability insurance premium audit compliance budget forecast "
    "the of and to in for with on by at from agreement party parties shall will may must "
    "January March October 2023 2024 15 percent EUR 4,250.00 section 12.3 Schedule B"
).split()


def page_text(seed: int, paragraphs: int = 6) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(paragraphs):
        words = [rng.choice(WORDS) for _ in range(rng.randint(40, 70))]
        words[0] = words[0].capitalize()
        out.append(" ".join(words) + ".")
    return out


def render_page(paragraphs: list[str], dpi: int = 300) -> Image.Image:
    width, height = int(8.27 * dpi), int(11.69 * dpi)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, int(11 * dpi / 72))
    margin = dpi
    y = margin
    for paragraph in paragraphs:
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}".strip()
            if draw.textlength(trial, font=font) > width - 2 * margin:
                draw.text((margin, y), line, font=font, fill=0)
                y += int(font.size * 1.4)
                line = word
            else:
                line = trial
        draw.text((margin, y), line, font=font, fill=0)
        y += int(font.size * 2.4)
    return image


def accuracy(reference: str, read: str) -> float:
    from rapidfuzz.distance import Levenshtein

    ref = " ".join(reference.split())
    got = " ".join(read.split())
    return max(0.0, 1 - Levenshtein.distance(ref, got) / max(len(ref), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--only", choices=["direct", "unstructured"], help="run one reader")
    args = parser.parse_args()
    from ingest.ocr import ocr_text

    pages = [page_text(seed) for seed in range(args.pages)]
    images = [render_page(p) for p in pages]
    refs = [" ".join(p) for p in pages]
    results: dict[str, Any] = {}

    if args.only != "unstructured":
        started, cpu = time.perf_counter(), _cpu()
        direct = [ocr_text(image) for image in images]
        elapsed = time.perf_counter() - started
        results["direct"] = _summary(refs, direct, elapsed, _cpu() - cpu)
    if args.only == "direct":
        print(json.dumps(results, indent=2))  # noqa: T201
        return

    from unstructured.partition.image import partition_image

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for number, image in enumerate(images):
            path = Path(tmp) / f"page{number}.png"
            image.save(path)
            paths.append(path)
        partition_image(filename=str(paths[0]), strategy="ocr_only")  # imports, not timed
        started, cpu = time.perf_counter(), _cpu()
        read = []
        for path in paths:
            elements = partition_image(filename=str(path), strategy="ocr_only", languages=["eng"])
            read.append(" ".join(e.text for e in elements))
        elapsed = time.perf_counter() - started
    results["unstructured"] = _summary(refs, read, elapsed, _cpu() - cpu)
    print(json.dumps(results, indent=2))  # noqa: T201


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the tesseract runs)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _summary(refs: list[str], read: list[str], elapsed: float, cpu: float) -> dict[str, Any]:
    scores = [accuracy(r, g) for r, g in zip(refs, read, strict=True)]
    return {
        "pages": len(refs),
        "seconds": round(elapsed, 2),
        "pages_per_s": round(len(refs) / elapsed, 3),
        "cpu_s_per_page": round(cpu / len(refs), 2),
        "char_accuracy_mean": round(sum(scores) / len(scores), 4),
        "char_accuracy_min": round(min(scores), 4),
    }


if __name__ == "__main__":
    main()
