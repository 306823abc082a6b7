"""The grounding check: are the answer's figures and quotes in the passages it cites?

``check_answer(answer, passages, question)`` looks up every figure (``figures``) and
every quoted string of the answer in the passages the answer cites (all passages when
it cites none) and reports the ones found nowhere, plus citations ``[n]`` that point to
no passage. A figure is supported when a cited passage (or the question) states an
equivalent value: same kind family, equal once rounded to the precision the answer states
it with ("$94.8 billion" is supported by 94,836 in millions; "21.1%" is not by "21%"), the
passage's bare numbers also read at the scale it declares ("in
millions") or, for table-sized numbers, at thousands and millions ("$94.8 billion" ~
"94,836"). Deterministic and local; passages are indexed once (sorted values per
precision), so the check is linear in the answer's length.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from service.grounding.figures import CITATION_RE, CODE_RE, Figure, find_figures, scale_context

IMPLICIT_SCALES = (1e3, 1e6)  # table figures are usually stated in thousands or millions
QUOTE_RE = re.compile(
    r'"([^"\n]{3,400})"|“([^”\n]{3,400})”|«\s?([^»\n]{3,400}?)\s?»|„([^“”\n]{3,400})[“”]'
)
_QUOTE_CHARS = str.maketrans({c: '"' for c in "“”„«»‟″"} | {c: "'" for c in "‘’‚‛′`"})


@dataclass(frozen=True, slots=True)
class Unsupported:
    """An answer span found in none of the cited passages."""

    text: str
    span: tuple[int, int]
    kind: Literal["figure", "quote"]


@dataclass(frozen=True, slots=True)
class Attributed:
    """A citation mark the service inserted (``service.grounding.attribute``): ``[n]`` at
    ``span`` of the final answer, for the sentence at ``sentence``, which cited nothing."""

    n: int
    span: tuple[int, int]
    sentence: tuple[int, int]
    score: float  # the share of the sentence's words and figures found in passage n


@dataclass(frozen=True, slots=True)
class Grounding:
    """What the check found; ``checked``: figures and quotes looked up. ``attributed``:
    marks inserted after the fact (``invalid_citations`` were then removed from the text)."""

    checked: int
    unsupported: list[Unsupported] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)
    attributed: list[Attributed] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unsupported and not self.invalid_citations


@dataclass(frozen=True, slots=True)
class _Entry:
    value: float
    precision: float
    kind: str
    scaled: bool


class FigureIndex:
    """Figures of some texts, searchable by value to within a precision."""

    def __init__(self, texts: Iterable[str]) -> None:
        self._buckets: dict[float, list[tuple[float, _Entry]]] = {}
        self._dates: set[int] = set()
        self._months: set[int] = set()
        for text in texts:
            self._add_text(text)
        self._keys = {q: [v for v, _ in rows] for q, rows in self._buckets.items()}

    def _add_text(self, text: str) -> None:
        declared = scale_context(text)
        for fig in find_figures(text):
            if fig.kind == "date":
                self._dates.add(int(fig.value))
                self._months.add(int(fig.value) // 100)
                self._put(_Entry(float(int(fig.value) // 10000), 1.0, "year", False))
                continue
            self._put(_Entry(fig.value, fig.precision, fig.kind, fig.scaled))
            if fig.scaled or fig.kind in ("percent", "year"):
                continue
            scales = set(declared)
            if fig.value >= 100 or "," in fig.text:
                scales.update(IMPLICIT_SCALES)
            for scale in scales:
                self._put(_Entry(fig.value * scale, fig.precision * scale, "amount", True))

    def _put(self, entry: _Entry) -> None:
        bisect.insort(
            self._buckets.setdefault(entry.precision, []), (entry.value, entry), key=_first
        )

    def supports(self, fig: Figure) -> bool:
        if fig.kind == "date":
            value = int(fig.value)
            return value in self._dates if value % 100 else value // 100 in self._months
        for precision, rows in self._buckets.items():
            # the passage's value, rounded as the answer states it, must be the answer's
            tolerance = fig.precision / 2 + abs(fig.value) * 1e-9
            keys = self._keys[precision]
            lo = bisect.bisect_left(keys, fig.value - tolerance)
            hi = bisect.bisect_right(keys, fig.value + tolerance)
            if any(_compatible(fig, entry) for _, entry in rows[lo:hi]):
                return True
        return False


def _first(row: tuple[float, _Entry]) -> float:
    return row[0]


def _compatible(fig: Figure, entry: _Entry) -> bool:
    if fig.kind == "percent":
        return entry.kind == "percent" or (entry.kind == "count" and entry.precision < 1)
    if entry.kind == "percent":
        return False
    if fig.kind == "year":
        return entry.kind in ("year", "count")
    return True


def normalise_text(text: str) -> str:
    """Case, quotes, dashes and whitespace normalised, for quote lookups."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTE_CHARS).lower()
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text)
    return re.sub(r"\s+", " ", text).strip()


def _quote_found(quote: str, haystack: str) -> bool:
    parts = [normalise_text(p).strip(" .,;:!?'\"") for p in re.split(r"\.\.\.|…|\[…\]", quote)]
    parts = [p for p in parts if p]
    position = 0
    for part in parts:
        found = haystack.find(part, position)
        if found < 0:
            return False
        position = found + len(part)
    return True


@dataclass(frozen=True, slots=True)
class CitationMark:
    """A citation mark ``[n]``/``[1, 3]``/``[2-4]`` of an answer and the numbers it names."""

    span: tuple[int, int]
    numbers: tuple[int, ...]


def citation_marks(answer: str) -> list[CitationMark]:
    """The answer's citation marks outside code, in order (year ranges are not marks)."""
    marks = []
    blanked = CODE_RE.sub(lambda c: " " * len(c.group()), answer)
    for match in CITATION_RE.finditer(blanked):
        numbers: set[int] = set()
        for part in re.split(r"\s*,\s*", match.group(1)):
            bounds = [int(x) for x in re.split(r"\s*[-–]\s*", part)]
            if bounds[-1] - bounds[0] > 50:  # "[1999-2024]": a year range
                continue
            numbers.update(range(bounds[0], bounds[-1] + 1))
        if numbers:
            marks.append(CitationMark(match.span(), tuple(sorted(numbers))))
    return marks


def citations_in(answer: str) -> tuple[list[int], list[int]]:
    """``(valid, invalid)`` citation numbers, read like ``prompt.cited_numbers``."""
    numbers = {n for mark in citation_marks(answer) for n in mark.numbers}
    return sorted(numbers), []


def check_answer(answer: str, passages: Mapping[int, str], question: str = "") -> Grounding:
    """Figures and quotes of ``answer`` looked up in the passages it cites (by number)."""
    numbers, _ = citations_in(answer)
    valid = [n for n in numbers if n in passages]
    invalid = [n for n in numbers if n not in passages]
    texts = [passages[n] for n in (valid or sorted(passages))]
    index = FigureIndex([*texts, question])
    unsupported: list[Unsupported] = []
    figures = find_figures(answer)
    for fig in figures:
        if not index.supports(fig):
            unsupported.append(Unsupported(fig.text, fig.span, "figure"))
    haystack = normalise_text("\n".join([*texts, question]))
    quotes = 0
    for m in QUOTE_RE.finditer(CODE_RE.sub(lambda c: " " * len(c.group()), answer)):
        quote = next(g for g in m.groups() if g is not None)
        if not re.search(r"\w", quote):
            continue
        quotes += 1
        if not _quote_found(quote, haystack):
            unsupported.append(Unsupported(m.group(), m.span(), "quote"))
    unsupported.sort(key=lambda u: u.span)
    return Grounding(len(figures) + quotes, unsupported, invalid)
