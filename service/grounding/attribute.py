"""Citations after the fact: each sentence of a generated answer that cites no passage gets
the passage that supports it best, and citation marks that point to no passage are dropped.

Small local models often cite nothing, or continue the numbered source list ("[3]
parking.txt" after two sources). ``attribute(answer, passages)``:

1. Removes the numbers of citation marks that name no passage (``[9]`` goes, ``[1, 9]``
   becomes ``[1]``) and reports them.
2. Cuts the answer into units: lines, and sentences within a line (a sentence's trailing
   marks belong to it). Code blocks, headings, table rows and questions are left alone.
3. Scores each unit without a mark against every passage: the share of the unit's content
   words (stop words and words that refer to the sources themselves left out, crudely
   stemmed) found in the passage, each figure (``figures``) counting as two words and found
   when the passage states an equivalent value (``check.FigureIndex``). A unit that states
   figures none of which a passage supports never goes to that passage. The best passage
   (ties: the better retrieved, lower ``n``) gets the unit when at least ``MIN_SHARE`` of it
   and ``MIN_FOUND`` words or figures are found there; otherwise the unit stays uncited.
4. Inserts `` [n]`` before the unit's closing punctuation ("... 27 days [1].").

No model: a few regular expressions and set lookups, linear in the answer's length times
the number of passages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from service.grounding.check import Attributed, FigureIndex, citation_marks
from service.grounding.extract import STOPWORDS
from service.grounding.figures import CODE_RE, find_figures

MIN_SHARE = 0.5  # of the unit's words and figures (figures weigh FIGURE_WEIGHT)
MIN_FOUND = 2  # words or figures found in the passage: one shared word is chance
FIGURE_WEIGHT = 2.0
STEM_CHARS = 5
# words an answer uses to talk about its sources, which the passages do not contain
META_WORDS = frozenset(
    "according source sources document documents passage passages context provided mention"
    " mentions mentioned state states stated say says said based information answer question"
    " text given".split()
)
_WORD = re.compile(r"[^\W_]+", re.U)
_SKIPPED_LINE = re.compile(r"\s*(?:#{1,6}\s|\||>|[-*_]{3,}\s*$)")
_LIST_ITEM = re.compile(r"\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_SENTENCE_END = re.compile(
    r"[.!?…]+[\"'”’)*_]*(?:\s*\[\d[\d,\s\-–]*\])*(?=\s+[\"“'(*_\[]*[A-Z0-9$€£])"
)
_CLOSING = ".!?…:;,"
_LAST_WORD = re.compile(r"[^\W\d_]+$")
ABBREVIATIONS = frozenset(
    "jan feb mar apr jun jul aug sep sept oct nov dec no nr vs approx ca cf eg ie etc fig"
    " inc corp co ltd st mr mrs ms dr prof p pp art sec".split()
)


@dataclass(frozen=True, slots=True)
class Attribution:
    """The answer with inferred marks inserted and invalid ones removed."""

    text: str
    attributed: list[Attributed]
    removed: list[int]  # numbers of marks that pointed to no passage


@dataclass(frozen=True, slots=True)
class _Source:
    n: int
    stems: frozenset[str]
    figures: FigureIndex


def attribute(answer: str, passages: Mapping[int, str]) -> Attribution:
    """``answer`` with each uncited sentence cited by the passage supporting it best."""
    text, removed = _drop_invalid(answer, passages)
    if not text.strip():  # the answer was nothing but invalid marks: leave it as it was
        return Attribution(answer, [], [])
    sources = [
        _Source(n, frozenset(_stems(body)), FigureIndex([body]))
        for n, body in sorted(passages.items())
    ]
    marked = [mark.span for mark in citation_marks(text)]
    chosen: list[tuple[int, int, int, float]] = []  # (start, end, n, score)
    for start, end in _units(text):
        if any(start <= m_start < end for m_start, _ in marked):
            continue
        best = _best_source(text[start:end], sources)
        if best is not None:
            chosen.append((start, end, *best))
    return _insert(text, chosen, removed)


def _drop_invalid(answer: str, passages: Mapping[int, str]) -> tuple[str, list[int]]:
    """Marks without a passage removed (with the space before them); numbers removed."""
    out: list[str] = []
    removed: set[int] = set()
    position = 0
    for mark in citation_marks(answer):
        start, end = mark.span
        valid = [n for n in mark.numbers if n in passages]
        removed.update(n for n in mark.numbers if n not in passages)
        if len(valid) == len(mark.numbers):
            continue
        if valid:
            out.append(answer[position:start] + "[" + ", ".join(map(str, valid)) + "]")
            position = end
            continue
        before = answer[position:start]
        if not answer[answer.rfind("\n", 0, start) + 1 : start].strip():
            end += len(answer[end:]) - len(answer[end:].lstrip(" \t"))  # "[3] parking.txt"
        else:
            before = before.rstrip(" \t")  # "rose [9]." -> "rose."
        out.append(before)
        position = end
    out.append(answer[position:])
    return "".join(out), sorted(removed)


def _units(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences (or lines) that may need a citation."""
    blanked = CODE_RE.sub(lambda c: " " * len(c.group()), text)
    spans: list[tuple[int, int]] = []
    offset = 0
    for line in blanked.splitlines(keepends=True):  # code blocks are blank lines here
        start, offset = offset, offset + len(line)
        if _SKIPPED_LINE.match(line):
            continue
        item = _LIST_ITEM.match(line)
        begin = start + (item.end() if item else 0)
        cuts = [
            start + m.end()
            for m in _SENTENCE_END.finditer(line)
            if not _abbreviation(line[: m.start()], line[m.start()])
        ]
        line_end = start + len(text[start:offset].rstrip())  # inline code ends it too
        for end in [*cuts, line_end]:
            piece = blanked[begin:end]
            lead = len(piece) - len(piece.lstrip())
            if piece.strip() and not piece.rstrip(" \"'”’)*_").endswith("?"):
                spans.append((begin + lead, end))
            begin = end
    return spans


def _abbreviation(before: str, stop: str) -> bool:
    """A full stop after an abbreviation or an initial ("Sept. 30", "e.g. The", "J. Smith")."""
    word = _LAST_WORD.search(before)
    return (
        stop == "."
        and word is not None
        and (word.group().lower() in ABBREVIATIONS or len(word.group()) == 1)
    )


def _stems(text: str) -> list[str]:
    """Content words, crudely stemmed: lower case, -ing/-ed/-s off, first letters kept."""
    out = []
    for word in _WORD.findall(text.lower()):
        if word.isdigit():
            out.append(word)
            continue
        if len(word) < 3 or word in STOPWORDS or word in META_WORDS:
            continue
        for suffix in ("ing", "ed", "s"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
                word = word[: -len(suffix)]
                break
        out.append(word[:STEM_CHARS])
    return out


def _best_source(unit: str, sources: list[_Source]) -> tuple[int, float] | None:
    """``(n, share)`` of the passage that supports ``unit`` best, if any supports it."""
    figures = find_figures(unit)
    words = set(_stems(_outside(unit, [(f.start, f.end) for f in figures])))
    total = len(words) + FIGURE_WEIGHT * len(figures)
    if not total:
        return None
    best: tuple[float, int, int] | None = None  # (share, found, -n)
    for source in sources:
        found_words = len(words & source.stems)
        found_figures = sum(1 for f in figures if source.figures.supports(f))
        if figures and not found_figures:
            continue  # its figures are not in this passage
        found = found_words + found_figures
        share = (found_words + FIGURE_WEIGHT * found_figures) / total
        if share < MIN_SHARE or found < MIN_FOUND:
            continue
        key = (share, found, -source.n)
        if best is None or key > best:
            best = key
    return None if best is None else (-best[2], round(best[0], 3))


def _outside(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with the ``spans`` blanked (a figure's digits are not words too)."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _insert(
    text: str, chosen: list[tuple[int, int, int, float]], removed: list[int]
) -> Attribution:
    """``text`` with `` [n]`` put before each chosen unit's closing punctuation."""
    out: list[str] = []
    attributed: list[Attributed] = []
    position = shift = 0
    for start, end, n, score in chosen:
        cut = end
        while cut > start and text[cut - 1] in _CLOSING:
            cut -= 1
        if cut == start:
            continue
        mark = f"[{n}]" if text[cut - 1].isspace() else f" [{n}]"
        out.append(text[position:cut] + mark)
        position = cut
        mark_start = cut + shift + len(mark) - len(f"[{n}]")
        shift += len(mark)
        attributed.append(
            Attributed(
                n=n,
                span=(mark_start, mark_start + len(f"[{n}]")),
                sentence=(start + shift - len(mark), end + shift),
                score=score,
            )
        )
    out.append(text[position:])
    return Attribution("".join(out), attributed, removed)
