"""Figures in text: find numbers, normalise them, and tell whether a passage states a figure.

A *figure* is a number written in text: ``$82,959 million``, ``45.2%``, ``(1,234)``,
``0.0125``. Normalisation, chosen to be conservative (no rounding, no guessed units):
- thousands separators, ``$``, ``%``/``percent`` and a table's parentheses are dropped, and
  the sign ignored: ``$(1,234.50)`` -> 1234.5;
- ``thousand``/``million``/``billion``/``trillion`` right after the number give a second,
  scaled value (``$1.2 billion`` -> 1.2 and 1,200,000,000); abbreviations (``M``, ``bn``) are
  not read, they are too ambiguous;
- a figure *appears in* a passage when the passage has a number with the same value as
  written (``82,959 million`` matches ``82,959`` in a table "in millions") or the same scaled
  value (``1,234.5 million`` matches ``1.2345 billion``). Passage numbers count only with 3+
  significant digits themselves (``$11.0 billion`` is not found in "11 segments"), or, by
  their scaled value only, with a scale word. A rounded restatement (``$52.9 billion`` for
  ``52,857``) does not match.

*Key* figures are the ones worth checking for: at least 3 significant digits (leading zeros
never count, an integer's trailing zeros do not either: ``1,200`` has 2) and not a year (a
bare 4-digit integer from 1900 to 2100, without separators, ``$``, ``%`` or scale word).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MIN_SIGNIFICANT_DIGITS = 3
YEAR_RANGE = (1900, 2100)
SCALES = {
    "thousand": Decimal(10) ** 3,
    "million": Decimal(10) ** 6,
    "billion": Decimal(10) ** 9,
    "trillion": Decimal(10) ** 12,
}

_NUMBER_RE = re.compile(
    r"(?<![\w.,])"  # not inside a word, an identifier (Q3, 10-Q is fine) or another number
    r"(?P<cur>\$\s?)?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,]\d)|\d+(?:\.\d+)?|\.\d+)"
    r"(?![\w])"  # not glued to letters: 3rd, 10x, 5G
    r"(?P<pct>\s?%|\s?percent\b)?"
    r"(?:\s?(?P<scale>thousand|million|billion|trillion)s?\b)?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Figure:
    """One number found in text, normalised."""

    text: str  # as written, e.g. "$82,959 million"
    value: Decimal  # as written, without sign, separators, $, %: 82959
    scaled: Decimal  # value times its scale word, if any: 82959000000
    significant: int  # significant digits of the number as written
    is_year: bool
    has_scale: bool = False  # followed by thousand/million/billion/trillion

    @property
    def is_key(self) -> bool:
        """Worth checking for: at least 3 significant digits and not a year."""
        return self.significant >= MIN_SIGNIFICANT_DIGITS and not self.is_year


def extract_figures(text: str) -> list[Figure]:
    """Every number in ``text``, in order."""
    figures = []
    for match in _NUMBER_RE.finditer(text):
        raw = match.group("num")
        digits = raw.replace(",", "")
        try:
            value = Decimal(digits)
        except InvalidOperation:  # pragma: no cover  (the pattern only admits numbers)
            continue
        scale_word = (match.group("scale") or "").lower()
        scaled = value * SCALES[scale_word] if scale_word else value
        plain = not (match.group("cur") or match.group("pct") or scale_word)
        is_year = (
            plain
            and re.fullmatch(r"\d{4}", raw) is not None
            and YEAR_RANGE[0] <= int(raw) <= YEAR_RANGE[1]
        )
        figures.append(
            Figure(
                text=match.group(0).strip(),
                value=value.normalize(),
                scaled=scaled.normalize(),
                significant=significant_digits(digits),
                is_year=is_year,
                has_scale=bool(scale_word),
            )
        )
    return figures


def key_figures(text: str) -> list[Figure]:
    """The figures of ``text`` worth checking for (``Figure.is_key``), each value once."""
    seen: set[Decimal] = set()
    out = []
    for figure in extract_figures(text):
        if figure.is_key and figure.value not in seen:
            seen.add(figure.value)
            out.append(figure)
    return out


def significant_digits(digits: str) -> int:
    """Significant digits of a plain decimal numeral (``"0.0120"`` -> 3, ``"1200"`` -> 2)."""
    if "." in digits:
        return len(digits.replace(".", "").lstrip("0"))
    return len(digits.lstrip("0").rstrip("0"))


class PassageFigures:
    """The numbers of some passages, for fast ``figure in passage_figures`` checks."""

    def __init__(self, texts: Iterable[str]) -> None:
        self._values: set[Decimal] = set()
        self._scaled: set[Decimal] = set()
        for text in texts:
            for figure in extract_figures(text):
                if figure.significant >= MIN_SIGNIFICANT_DIGITS:
                    self._values.add(figure.value)
                    self._scaled.add(figure.scaled)
                elif figure.has_scale:  # "$1.2 billion" states 1,200,000,000, not "1.2"
                    self._scaled.add(figure.scaled)

    def __contains__(self, figure: object) -> bool:
        if not isinstance(figure, Figure):
            return False
        return figure.value in self._values or figure.scaled in self._scaled


def figures_appear(figures: Iterable[Figure], texts: Iterable[str]) -> list[Figure]:
    """The ``figures`` that appear in any of ``texts``."""
    found = PassageFigures(texts)
    return [figure for figure in figures if figure in found]
