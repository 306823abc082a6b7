"""Ground truth for the grounding bench: is each figure of an answer in its sources?

Deliberately simple and separate from ``service.grounding`` (its matcher is what is being
measured). Rules, all of them:

* A figure of the answer is a run of digits, with optional ``,ddd`` groups and decimals
  (``94,836``, ``15.7``, ``2023``), outside citation marks ``[n]``; not when glued to a
  letter (``Q3``, ``10-Q``, ``3rd``, ``401(k)``) nor a list marker at the start of a line
  (``1.`` / ``1)``). Units and signs around it (``$``, ``%``) are ignored.
* A date written ``Month D, YYYY`` is one figure, found only when a text writes the same
  date the same way (``July 1, 2023``); a figure followed by ``%`` or ``percent`` is found
  only among the percentages of a text, any other only among its other numbers.
  References (``p. 28``, ``pp. 6-7``, ``page 4``, ``Note 4``, ``Item 2``) are labelled
  ``reference`` and left out of the rates: the issue's figures are amounts, percentages,
  dates and counts (the check skips references too).
* Other values are looked up among the numbers of a text (every digit run there, read the
  same way, glued or not): *exact* when the same value occurs; *rounded* when a number with more
  decimals rounds to it (``15.72`` -> ``15.7``); *scaled* when the answer gives a scale word
  (``94.8 billion``) and a number of the text times 1, 10^3, 10^6 or 10^9 rounds to the
  answer's value at the precision stated (``94,836`` read in millions).
* ``supported``: found in a passage the answer cites (every passage when it cites none),
  in the heading the model was shown for it (``[n] 2023 Q1 AAPL.pdf, p. 4``: ``why`` is
  ``heading``) or in the question; ``uncited``: found only in a retrieved passage it does
  not cite; ``invented``: found in no retrieved passage, heading, nor the question.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

NUMBER_RE = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\d.,])\d+(?:\.\d+)?")
CITE_RE = re.compile(r"\[\s*\d+(?:\s*[,\-–]\s*\d+)*\s*\]")
SCALE_RE = re.compile(r"\s*(thousand|million|billion|trillion)\b", re.I)
SCALES = {"thousand": 3, "million": 6, "billion": 9, "trillion": 12}
MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November"
    r"|December)"
)
DATE_RE = re.compile(rf"\b{MONTH}\s+\d{{1,2}},\s+\d{{4}}\b")
PERCENT_RE = re.compile(r"\s?(?:%|percent\b)")
PAGE_RE = re.compile(r"\b(?:p|pp|pages?|notes?|items?|part)\.?\s*$", re.I)


@dataclass(frozen=True)
class Label:
    text: str
    start: int
    end: int
    label: str  # supported | uncited | invented | reference
    why: str  # exact | rounded | scaled | heading | question | none


def numbers(text: str, percent: bool = False) -> set[Decimal]:
    """The numbers written in ``text`` (commas as thousands separators): with ``percent``
    those followed by ``%`` or ``percent``, else the others."""
    return {
        Decimal(m.group().replace(",", ""))
        for m in NUMBER_RE.finditer(text)
        if percent == bool(PERCENT_RE.match(text, m.end()))
    }


def dates(text: str) -> set[str]:
    return {re.sub(r"\s+", " ", m.group()) for m in DATE_RE.finditer(text)}


def answer_figures(answer: str) -> list[tuple[str, int, int, int]]:
    """``(text, start, end, scale exponent)`` of the figures of ``answer``; exponent -1 for a
    date, -2 for a percentage, -3 for a page reference."""
    blanked = CITE_RE.sub(lambda m: " " * len(m.group()), answer)
    out = []
    for m in DATE_RE.finditer(blanked):
        out.append((m.group(), m.start(), m.end(), -1))
        blanked = blanked[: m.start()] + " " * len(m.group()) + blanked[m.end() :]
    for m in NUMBER_RE.finditer(blanked):
        before = blanked[max(0, m.start() - 1) : m.start()]
        after = blanked[m.end() : m.end() + 3]
        if before.isalpha() or re.match(r"[A-Za-z]|-[A-Za-z]|\([a-z]\)", after):
            continue  # an identifier or ordinal: Q3, 10-Q, 3rd, 401(k)
        line_start = blanked.rfind("\n", 0, m.start()) + 1
        if not blanked[line_start : m.start()].strip() and re.match(r"[.)]\s", after):
            continue  # a list marker
        scale = SCALE_RE.match(blanked, m.end())
        exponent = SCALES[scale.group(1).lower()] if scale else 0
        if PERCENT_RE.match(blanked, m.end()):
            exponent = -2
        elif PAGE_RE.search(blanked[max(0, m.start() - 8) : m.start()]) or re.search(
            r"\bpp\.?\s*\d+[-–]$", blanked[max(0, m.start() - 14) : m.start()]
        ):
            exponent = -3
        out.append((m.group(), m.start(), m.end(), exponent))
    return sorted(out, key=lambda f: f[1])


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def how_found(text: str, exponent: int, pool: Iterable[Decimal]) -> str | None:
    """``exact``, ``rounded`` or ``scaled`` when the figure is among ``pool``, else None."""
    if exponent == -1:
        return None
    value = Decimal(text.replace(",", ""))
    pool = set(pool)
    if value in pool:
        return "exact"
    step = Decimal(1).scaleb(-_decimals(value))
    for number in pool:
        if _decimals(number) > _decimals(value) and number.quantize(step, ROUND_HALF_UP) == value:
            return "rounded"
    if exponent > 0:
        wanted = value.scaleb(exponent)
        unit = step.scaleb(exponent)
        for number in pool:
            for power in (0, 3, 6, 9):
                scaled = number.scaleb(power)
                if abs(scaled - wanted) <= unit / 2 and scaled != 0:
                    return "scaled"
    return None


def cited(answer: str, count: int) -> list[int]:
    found = {int(n) for m in CITE_RE.finditer(answer) for n in re.findall(r"\d+", m.group())}
    return sorted(n for n in found if 1 <= n <= count)


def label_answer(
    answer: str,
    passages: Mapping[int, str],
    question: str,
    headings: Mapping[int, str] | None = None,
) -> list[Label]:
    """Every figure of ``answer`` labelled against its passages (numbered from 1)."""
    valid = [n for n in cited(answer, max(passages, default=0)) if n in passages]
    chosen = valid or sorted(passages)
    heads = headings or {}
    texts = {
        "cited": "\n".join(passages[n] for n in chosen),
        "heading": "\n".join(heads.get(n, "") for n in chosen),
        "question": question,
        "any": "\n".join([*passages.values(), *heads.values()]),
    }
    labels = []
    for text, start, end, exponent in answer_figures(answer):
        if exponent == -3:
            labels.append(Label(text, start, end, "reference", "page"))
            continue
        found = {where: _found(text, exponent, body) for where, body in texts.items()}
        if found["cited"]:
            labels.append(Label(text, start, end, "supported", found["cited"]))
        elif found["heading"] or found["question"]:
            why = "heading" if found["heading"] else "question"
            labels.append(Label(text, start, end, "supported", why))
        elif found["any"]:
            labels.append(Label(text, start, end, "uncited", found["any"]))
        else:
            labels.append(Label(text, start, end, "invented", "none"))
    return labels


def _found(text: str, exponent: int, body: str) -> str | None:
    if exponent == -1:
        return "exact" if re.sub(r"\s+", " ", text) in dates(body) else None
    return how_found(text, exponent, numbers(body, percent=exponent == -2))
