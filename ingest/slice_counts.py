"""Word-piece counts of the slices of one text, from a single tokenization.

Chunking measures a section, then its paragraphs, then their sentences, then the chunks it
merges from them: each a slice of the same text, each tokenized again. A BERT-style
tokenizer splits words at whitespace and punctuation before it cuts them into
word-pieces, so a slice that starts and ends at such a boundary holds exactly the
word-pieces of the whole text that fall inside it. Those are counted from the offsets of
one tokenization; any other slice (cut inside a word, or not found) is left to the caller.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Sequence

Spans = Callable[[str], Sequence[tuple[int, int]] | None]
"""A text's word-pieces as (start, end) character offsets; None when not available."""


class SliceCounts:
    """Counts word-pieces of slices of ``text``; tokenizes it (``spans``) on first use."""

    def __init__(self, text: str, spans: Spans) -> None:
        self._text = text
        self._spans = spans
        self._starts: list[int] | None = None
        self._available = True
        self._cursor = 0  # where the last slice started: the splitter asks in text order

    def count(self, piece: str) -> int | None:
        """Word-pieces of ``piece``; None unless it is a slice of the text with a word
        boundary at both ends (then the caller tokenizes it)."""
        if not piece or not self._available:
            return None
        start = self._text.find(piece, self._cursor)
        if start < 0:
            start = self._text.find(piece)
        if start < 0:
            return None
        self._cursor = start
        end = start + len(piece)
        if not (self._boundary(start) and self._boundary(end)):
            return None
        starts = self._token_starts()
        if starts is None:
            return None
        return bisect_left(starts, end) - bisect_left(starts, start)

    def _token_starts(self) -> list[int] | None:
        if self._starts is None and self._available:
            spans = self._spans(self._text)
            self._available = spans is not None
            self._starts = [start for start, _ in spans or ()]
        return self._starts if self._available else None

    def _boundary(self, at: int) -> bool:
        text = self._text
        if at <= 0 or at >= len(text):
            return True
        return _splits_words(text[at - 1]) or _splits_words(text[at])


def _splits_words(char: str) -> bool:
    """Whether a BERT pre-tokenizer ends a word at ``char`` (whitespace, punctuation)."""
    if char in " \t\n\r":
        return True
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    category = unicodedata.category(char)
    return category == "Zs" or category.startswith("P")
