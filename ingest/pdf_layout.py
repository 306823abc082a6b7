"""Words and lines of a PDF page's text layer, from pdfium's character boxes.

Characters join into words (a space, a jump in position or a new baseline ends one), words
into lines (by vertical overlap; a small raised mark such as "®" or a footnote number joins
the line it is set on), and a line splits into segments at gaps wider than its height: the
cells of a table row. Coordinates are unstructured's: points, y downwards.
"""

from __future__ import annotations

from dataclasses import dataclass

SEGMENT_GAP = 1.0  # in line heights: wider gaps between words separate cells


@dataclass(slots=True)
class Word:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float


@dataclass(slots=True)
class Line:
    words: list[Word]
    top: float
    bottom: float

    @property
    def height(self) -> float:
        return max(1.0, self.bottom - self.top)

    def segments(self) -> list[list[Word]]:
        out: list[list[Word]] = [[self.words[0]]]
        for word in self.words[1:]:
            if word.x0 - out[-1][-1].x1 > SEGMENT_GAP * self.height:
                out.append([word])
            else:
                out[-1].append(word)
        return out


def read_words(textpage: object, page_height: float) -> list[Word]:
    import pypdfium2.raw as raw

    handle = textpage.raw  # type: ignore[attr-defined]
    words: list[Word] = []
    current: list[tuple[str, float, float, float, float]] = []

    def flush() -> None:
        if current:
            text = "".join(c[0] for c in current)
            words.append(
                Word(
                    text,
                    min(c[1] for c in current),
                    max(c[2] for c in current),
                    min(c[3] for c in current),
                    max(c[4] for c in current),
                )
            )
            current.clear()

    left, bottom, right, top = (raw.c_double(), raw.c_double(), raw.c_double(), raw.c_double())
    for i in range(raw.FPDFText_CountChars(handle)):
        code = raw.FPDFText_GetUnicode(handle, i)
        char = chr(code) if 0 < code < 0x110000 else " "
        if char.isspace() or not raw.FPDFText_GetCharBox(handle, i, left, right, bottom, top):
            flush()
            continue
        box = (char, left.value, right.value, page_height - top.value, page_height - bottom.value)
        if current:
            prev = current[-1]
            size = max(1.0, prev[4] - prev[3], box[4] - box[3])
            if (
                box[3] > prev[4]
                or box[4] < prev[3]
                or (box[1] - prev[2] > 0.45 * size or box[1] < prev[1] - 0.5 * size)
            ):
                flush()
        current.append(box)
    flush()
    return words


def group_lines(words: list[Word]) -> list[Line]:
    """Words grouped into lines by vertical overlap, each line ordered left to right."""
    lines: list[Line] = []
    for word in sorted(words, key=lambda w: ((w.top + w.bottom) / 2, w.x0)):
        middle = (word.top + word.bottom) / 2
        if lines and (lines[-1].top <= middle <= lines[-1].bottom or _superscript(lines[-1], word)):
            line = lines[-1]
            line.words.append(word)
            line.top, line.bottom = min(line.top, word.top), max(line.bottom, word.bottom)
        else:
            lines.append(Line([word], word.top, word.bottom))
    for line in lines:
        line.words.sort(key=lambda w: w.x0)
    return lines


def _superscript(line: Line, word: Word) -> bool:
    """A small mark ("®", a footnote number) set above a line's middle, or a line of such
    marks set above this word's: they overlap by half the smaller height (text lines never)."""
    overlap = min(line.bottom, word.bottom) - max(line.top, word.top)
    return overlap >= 0.5 * min(line.height, max(1.0, word.bottom - word.top))
