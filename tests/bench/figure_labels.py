"""Ground truth for the grounding bench: is each figure of an answer in its sources?

Deliberately simple and separate from ``service.grounding`` (its matcher is what is being
measured). Rules, all of them:

* A figure of the answer is a run of digits, with optional ``,ddd`` groups and decimals
  (``94,836``, ``15.7``, ``2023``), outside citation marks ``[n]``; not when glued to a
  letter (``Q3``, ``10-Q``, ``3rd``, ``401(k)``) nor a list marker at the start of a line
  (``1.`` / ``1)``). Units and signs around it (``$``, ``%``) are ignored.
* Its value is looked up among the numbers of a text (every digit run there, read the same
  way, glued or not): *exact* when the same value occurs; *rounded* when a number with more
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


@dataclass(frozen=True)
class Label:
    text: str
    start: int
    end: int
    label: str  # supported | uncited | invented
    why: str  # exact | rounded | scaled | question | none


def numbers(text: str) -> set[Decimal]:
    """Every number written in ``text`` (commas as thousands separators)."""
    return {Decimal(m.group().replace(",", "")) for m in NUMBER_RE.finditer(text)}


def answer_figures(answer: str) -> list[tuple[str, int, int, int]]:
    """``(text, start, end, scale exponent)`` of the figures of ``answer``."""
    blanked = CITE_RE.sub(lambda m: " " * len(m.group()), answer)
    out = []
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
        out.append((m.group(), m.start(), m.end(), exponent))
    return out


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def how_found(text: str, exponent: int, pool: Iterable[Decimal]) -> str | None:
    """``exact``, ``rounded`` or ``scaled`` when the figure is among ``pool``, else None."""
    value = Decimal(text.replace(",", ""))
    pool = set(pool)
    if value in pool:
        return "exact"
    step = Decimal(1).scaleb(-_decimals(value))
    for number in pool:
        if _decimals(number) > _decimals(value) and number.quantize(step, ROUND_HALF_UP) == value:
            return "rounded"
    if exponent:
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
    in_cited = numbers("\n".join(passages[n] for n in chosen))
    in_headings = numbers("\n".join((headings or {}).get(n, "") for n in chosen))
    in_any = numbers("\n".join([*passages.values(), *(headings or {}).values()]))
    in_question = numbers(question)
    labels = []
    for text, start, end, exponent in answer_figures(answer):
        why = how_found(text, exponent, in_cited)
        if why:
            labels.append(Label(text, start, end, "supported", why))
        elif how_found(text, exponent, in_headings):
            labels.append(Label(text, start, end, "supported", "heading"))
        elif how_found(text, exponent, in_question):
            labels.append(Label(text, start, end, "supported", "question"))
        elif why := how_found(text, exponent, in_any):
            labels.append(Label(text, start, end, "uncited", why))
        else:
            labels.append(Label(text, start, end, "invented", "none"))
    return labels
