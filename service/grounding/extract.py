"""Extractive answers: the passages' sentences that answer the question best, verbatim.

Passages are cut into units: sentences, or lines where a block has no sentence
boundaries (tables, lists), or word-bounded windows where a line is very long. Each
unit is scored against the question with what is already at hand: a BM25 score of the
question's words over the units (computed here, on the fly), the passage's retrieval
rank, a bonus for units with amounts or percentages when the question asks for a figure,
a penalty for short units without one (headings, page footers), and (optional)
the cosine between the question and the unit from the service's encoder. The best few
units, within a character budget, are quoted in the order of the passages, each with
its citation ``[n]``. Never empty while there is a passage.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from service.grounding.figures import find_figures

Encode = Callable[[list[str]], np.ndarray]  # texts -> unit vectors, one row each

MAX_UNIT_CHARS = 400
MIN_UNIT_CHARS = 20
SHORT_WORDS = 6  # words of 3+ letters
RANK_STEP = 0.15  # the retrieval prior: 1.0 for passage [1], 0.85 for [2], ...
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+(?=[\"“'(\[]?[A-Z0-9$€£])")
_BLOCK = re.compile(r"\n\s*\n")
_WORD = re.compile(r"[^\W_]+", re.U)
_NUMERIC_Q = re.compile(
    r"\b(how (?:much|many|long|often)|what (?:was|were|is|are) the (?:total|amount|number|"
    r"percentage|rate|value)|amount|total|number of|percent(?:age)?|rate|revenue|sales|income|"
    r"cost|costs|expenses?|margin|cash|debt|price|shares?|when|date|year|ratio|growth)\b",
    re.I,
)
STOPWORDS = frozenset(
    "a an the of to in on at for by with from and or but is are was were be been being do does"
    " did has have had what which who whom whose when where why how that this these those it its"
    " as into than then there their they them we our you your i me my he she his her not no"
    " can could would should will shall may might must about over under between during per"
    " any all each some such so if also other more most much many".split()
)
K1, B = 1.2, 0.75
RELATIVE_FLOOR = 0.5  # a further quote scores at least half the best one


@dataclass(frozen=True, slots=True)
class Passage:
    n: int  # its citation number
    text: str
    score: float  # retrieval similarity, 0..1


@dataclass(frozen=True, slots=True)
class Quote:
    n: int
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class Extract:
    """The chosen quotes (in passage order) and the answer text made from them."""

    quotes: list[Quote]

    @property
    def text(self) -> str:
        return "\n\n".join(f"“{q.text}” [{q.n}]" for q in self.quotes)

    @property
    def cited(self) -> list[int]:
        return sorted({q.n for q in self.quotes})


def terms(text: str) -> list[str]:
    """Lower-cased words without stop words, lightly stemmed (plural 's')."""
    out = []
    for word in _WORD.findall(text.lower()):
        if word in STOPWORDS:
            continue
        if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


def units(text: str) -> list[str]:
    """Sentences; lines for blocks without sentence boundaries; windows for long lines."""
    out: list[str] = []
    for block in _BLOCK.split(text):
        block = block.strip()
        if not block:
            continue
        lines = [ln.strip() for ln in block.splitlines() if ln.strip()]
        if len(lines) > 1 and _tabular(lines):
            candidates = lines
        else:
            candidates = [s.strip() for s in _SENTENCE_END.split(" ".join(lines)) if s.strip()]
        for unit in candidates:
            if len(unit) <= MAX_UNIT_CHARS:
                out.append(unit)
            else:
                out.extend(_windows(unit))
    return out


def _tabular(lines: list[str]) -> bool:
    """Most lines short or starting like a list/table row: keep the lines as they are."""
    listy = sum(
        1
        for ln in lines
        if len(ln) < 60 or ln[0] in "-*•|·" or ln.count("  ") >= 2 or ln.count("|") >= 2
    )
    return listy * 2 >= len(lines)


def _windows(text: str) -> list[str]:
    """Word-bounded pieces of at most ``MAX_UNIT_CHARS`` (by '; ' first, then by words)."""
    pieces: list[str] = []
    for part in re.split(r"(?<=;)\s+", text):
        while len(part) > MAX_UNIT_CHARS:
            cut = part.rfind(" ", 0, MAX_UNIT_CHARS)
            cut = cut if cut > MAX_UNIT_CHARS // 2 else MAX_UNIT_CHARS
            pieces.append(part[:cut].strip())
            part = part[cut:].strip()
        if part:
            pieces.append(part)
    return pieces


def extract(
    question: str,
    passages: Sequence[Passage],
    *,
    max_quotes: int = 3,
    max_chars: int = 700,
    encode: Encode | None = None,
) -> Extract:
    """The best ``max_quotes`` units of ``passages`` for ``question`` (within ``max_chars``)."""
    cands: list[tuple[int, int, Passage, str]] = []  # (passage index, position, passage, unit)
    seen: set[str] = set()
    for i, passage in enumerate(passages):
        for j, unit in enumerate(units(passage.text)):
            key = " ".join(unit.lower().split())
            if key in seen:  # chunks overlap: the same sentence twice
                continue
            seen.add(key)
            cands.append((i, j, passage, unit))
    if not cands:
        return Extract([])
    ranks = [max(0.0, 1.0 - RANK_STEP * i) for i, *_ in cands]  # passage 1 first
    scores = _scores(question, [c[3] for c in cands], ranks, encode)
    ranked = sorted(range(len(cands)), key=lambda k: (-scores[k], cands[k][0], cands[k][1]))
    chosen: list[int] = []
    used = 0
    floor = RELATIVE_FLOOR * scores[ranked[0]]
    for k in ranked:
        unit = cands[k][3]
        if chosen and (scores[k] <= floor or used + len(unit) > max_chars):
            continue
        chosen.append(k)
        used += len(unit)
        if len(chosen) >= max_quotes:
            break
    chosen.sort(key=lambda k: (cands[k][0], cands[k][1]))
    return Extract([Quote(cands[k][2].n, cands[k][3], round(scores[k], 4)) for k in chosen])


def _scores(
    question: str, texts: list[str], priors: list[float], encode: Encode | None
) -> list[float]:
    q_terms = set(terms(question))
    docs = [Counter(terms(t)) for t in texts]
    lengths = [sum(d.values()) for d in docs]
    avg = (sum(lengths) / len(lengths)) or 1.0
    n = len(docs)
    df = Counter(t for d in docs for t in q_terms if t in d)
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in q_terms}
    lexical = []
    for d, length in zip(docs, lengths):
        s = 0.0
        for t in q_terms:
            tf = d.get(t, 0)
            if tf:
                s += idf[t] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / avg))
        lexical.append(s)
    top = max(lexical) or 1.0
    numeric = bool(_NUMERIC_Q.search(question))
    semantic = _semantic(question, texts, encode)
    out = []
    for k, text in enumerate(texts):
        score = 0.5 * lexical[k] / top + 0.25 * priors[k]
        if semantic is not None:
            score += 0.35 * max(0.0, float(semantic[k]))
        kinds = {f.kind for f in find_figures(text)} if numeric else set()
        amounts = bool(kinds & {"amount", "percent"})
        if amounts:
            score += 0.3
        elif kinds - {"year"}:
            score += 0.1
        words = sum(1 for w in _WORD.findall(text) if len(w) > 2 and not w.isdigit())
        if len(text) < MIN_UNIT_CHARS or (words < SHORT_WORDS and not amounts):
            score *= 0.4  # headings, page footers ("Apple Inc. | Q3 2023 Form 10-Q | 14")
        out.append(score)
    return out


def _semantic(question: str, texts: list[str], encode: Encode | None) -> np.ndarray | None:
    if encode is None:
        return None
    vectors = encode([question, *texts])
    return np.asarray(vectors[1:] @ vectors[0])
