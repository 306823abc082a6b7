"""Figures in text: amounts, percentages, dates, years and counts, normalised to numbers.

``find_figures(text)`` returns every figure with its span, its value in base units
("$94.8 billion" -> 94.8e9), the precision it was stated with (0.1e9 there), whether it
carried a scale word, and a kind (``amount``, ``percent``, ``date``, ``year``,
``count``). Separators ("94,836", "1 234,5", "94,8"), currency signs, "%", "percent",
scale words ("billion", "bn", "M", "Mrd.", "millions") and number words
("twenty-eight") are understood. Not figures: citation marks "[2]", list numbers,
identifiers glued to letters ("Q3", "10-Q", "401(k)"), references ("Note 7", "page 4")
and anything inside code. One pass of a few regular expressions: linear in the text.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["amount", "percent", "date", "year", "count"]

SCALES: dict[str, float] = {
    "thousand": 1e3, "thousands": 1e3, "k": 1e3, "tsd": 1e3, "mil": 1e3,
    "million": 1e6, "millions": 1e6, "mn": 1e6, "mm": 1e6, "m": 1e6, "mio": 1e6,
    "millionen": 1e6, "millones": 1e6, "milioni": 1e6,
    "billion": 1e9, "billions": 1e9, "bn": 1e9, "b": 1e9, "mrd": 1e9, "milliard": 1e9,
    "milliards": 1e9, "milliarde": 1e9, "milliarden": 1e9, "miliardi": 1e9,
    "trillion": 1e12, "trillions": 1e12, "tn": 1e12,
}  # fmt: skip
ABBREVIATED = {"mrd", "mio", "tsd", "bn", "mn", "tn", "k", "m", "b", "mm"}
MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("january", "jan", "janvier", "januar", "enero"),
            ("february", "feb", "février", "februar", "febrero"),
            ("march", "mar", "mars", "märz", "marzo"),
            ("april", "apr", "avril", "abril"),
            ("may", "mai", "mayo"),
            ("june", "jun", "juin", "juni", "junio"),
            ("july", "jul", "juillet", "juli", "julio"),
            ("august", "aug", "août", "agosto"),
            ("september", "sep", "sept", "septembre", "septiembre"),
            ("october", "oct", "octobre", "oktober", "octubre"),
            ("november", "nov", "novembre", "noviembre"),
            ("december", "dec", "décembre", "dezember", "diciembre"),
        ],
        1,
    )
    for name in names
}
UNITS = {
    "ones": {
        "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
        "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
        "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    },
    "tens": {
        "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
        "eighty": 80, "ninety": 90,
    },
}  # fmt: skip
_ONES = "|".join(UNITS["ones"])
_TENS = "|".join(UNITS["tens"])

CODE_RE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.S)
CITATION_RE = re.compile(r"\[(\d{1,4}(?:\s*(?:,|-|–)\s*\d{1,4})*)\]")
_NUM = (  # grouped by ",", thin/no-break spaces or (2+ groups) "."; then decimals
    r"\d{1,3}(?:(?:,\d{3})+|(?:[.\u00a0\u202f\u2009]\d{3}){2,}|(?:[\u00a0\u202f\u2009]\d{3})+)?"
    r"(?:[.,]\d+)?|\d+(?:[.,]\d+)?"
)
_NUMBER = rf"""
    (?P<number>(?=[$€£¥U\d])
        (?P<cur1>[$€£¥]|US\$)?
        (?<![\w.,-])(?P<digits>{_NUM})(?![\w-]*\d)
        (?:\s?(?P<cur2>[$€£¥])
          |(?P<pct>\s?%|\s?(?:percent|per\s?cent|pour\s?cent|prozent|por\s?ciento)\b))?
        (?:\s?(?P<scale>[^\W\d_]{{1,11}})\b\.?)?
    )"""
# Month and scale words are matched as any word and checked against the tables in Python:
# a long alternation of literal words is several times slower in ``re``; so is one pattern
# with every branch, hence one pass per kind, dates first.
DATE_RES = [
    re.compile(
        r"\b(?P<d2>\d{1,2})(?:st|nd|rd|th)?\.?\s+(?P<m2>[^\W\d_]{3,10})\.?,?\s+"
        r"(?P<y2>(?:19|20)\d{2})\b",
        re.I,
    ),
    re.compile(
        r"\b(?P<m1>[^\W\d_]{3,10})\.?\s+(?:(?P<d1>\d{1,2})(?:st|nd|rd|th)?,?\s+)?"
        r"(?P<y1>(?:19|20)\d{2})\b",
        re.I,
    ),
    re.compile(r"\b(?P<y3>(?:19|20)\d{2})-(?P<m3>\d{2})-(?P<d3>\d{2})\b"),
]
WORDS_RE = re.compile(rf"\b(?:(?:{_TENS})(?:[-\s](?:{_ONES}))?|{_ONES})\b", re.I)
NUMBER_RE = re.compile(_NUMBER, re.I | re.X)
REFERENCE_RE = re.compile(
    r"(?:\b(?:note|notes|item|items|page|pages|p|pp|section|part|article|art|chapter|table"
    r"|figure|fig|exhibit|schedule|no|nr|step|rule|form|level|tier|phase|version|v)\.?"
    r"|[#§])\s*$",
    re.I,
)
SCALE_CONTEXT_RE = re.compile(
    r"\b(?:in|of|\(in)\s+(thousands|millions|billions)\b|\b(thousands|millions|billions)\s+of\b",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure: ``value`` in base units, stated to within ``precision``."""

    text: str
    start: int
    end: int
    kind: Kind
    value: float
    precision: float
    scaled: bool = False  # a scale word was given ("billion")

    @property
    def span(self) -> tuple[int, int]:
        return (self.start, self.end)


def parse_number(digits: str) -> tuple[float, float]:
    """``(value, precision)`` of a digit string with any common separators."""
    raw = re.sub(r"[\u00a0\u202f\u2009]", " ", digits)
    decimals = ""
    if "," in raw and "." in raw:  # the later one is the decimal mark
        dec = "," if raw.rfind(",") > raw.rfind(".") else "."
        whole, _, decimals = raw.rpartition(dec)
    elif "," in raw:
        whole, _, tail = raw.rpartition(",")
        if raw.count(",") == 1 and len(tail) != 3:  # "94,8": a decimal comma
            decimals = tail
        else:
            whole = raw
    elif raw.count(".") == 1:
        whole, _, decimals = raw.partition(".")
    else:
        whole = raw  # "1.234.567": dots as thousands separators
    whole = re.sub(r"[^\d]", "", whole)
    value = float(f"{whole or '0'}.{decimals or '0'}")
    return value, 10.0 ** -len(decimals)


def _words_value(text: str) -> int:
    total = 0
    for part in re.split(r"[-\s]+", text.lower()):
        total += UNITS["tens"].get(part, 0) + UNITS["ones"].get(part, 0)
    return total


def _is_list_marker(text: str, start: int, end: int) -> bool:
    line_start = text.rfind("\n", 0, start) + 1
    return not text[line_start:start].strip() and text[end : end + 2] in (". ", ") ")


def find_figures(text: str) -> list[Figure]:
    """Every figure in ``text``, in order (code, citations and references skipped)."""
    masked = CODE_RE.sub(lambda m: " " * len(m.group()), text)
    masked = CITATION_RE.sub(lambda m: " " * len(m.group()), masked)
    figures: list[Figure] = []
    taken: list[tuple[int, int]] = []
    for date_re in DATE_RES:
        for m in date_re.finditer(masked):
            date = _date(m, masked)
            if date is not None and not _overlaps(taken, date.start, date.end):
                figures.append(date)
                bisect.insort(taken, (date.start, date.end))
    for m in NUMBER_RE.finditer(masked):
        number = _number(m, masked)
        if number is not None and not _overlaps(taken, m.start("digits"), m.end("digits")):
            figures.append(number)
    for m in WORDS_RE.finditer(masked):
        if not _overlaps(taken, m.start(), m.end()):
            value = float(_words_value(m.group()))
            figures.append(Figure(m.group(), m.start(), m.end(), "count", value, 1.0))
    figures.sort(key=lambda f: f.start)
    return figures


def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether ``[start, end)`` overlaps one of the sorted, disjoint ``spans``."""
    i = bisect.bisect_right(spans, (start, float("inf"))) - 1
    if i >= 0 and spans[i][1] > start:
        return True
    return i + 1 < len(spans) and spans[i + 1][0] < end


def _date(m: re.Match[str], text: str) -> Figure | None:
    parts = m.groupdict()
    month_text = parts.get("m1") or parts.get("m2")
    month = MONTHS.get(month_text.lower(), 0) if month_text else int(parts.get("m3") or 0)
    day_text = parts.get("d1") or parts.get("d2") or parts.get("d3")
    day = int(day_text) if day_text else 0
    if not 1 <= month <= 12 or day > 31:
        return None
    year = int(parts.get("y1") or parts.get("y2") or parts.get("y3") or 0)
    start, end = m.span()
    # one number per date: yyyymmdd, day 0 when only the month is given
    return Figure(text[start:end], start, end, "date", year * 10000 + month * 100 + day, 0.0)


def _number(m: re.Match[str], text: str) -> Figure | None:
    start = m.start()
    digits = m.group("digits")
    if REFERENCE_RE.search(text[max(0, start - 12) : start]) and not m.group("cur1"):
        return None
    if _is_list_marker(text, m.start("digits"), m.end("digits")):
        return None
    scale_word = (m.group("scale") or "").lower()
    scale = SCALES.get(scale_word, 0.0)
    currency = bool(m.group("cur1") or m.group("cur2"))
    if scale_word in ("m", "b", "mil") and not currency:
        scale = 0.0  # "5 m" (metres), "mil" (Spanish thousand) without a currency
    if scale_word == "k" and not digits.isdigit():
        scale = 0.0
    after = text[m.end("digits") : m.end("digits") + 3]
    glued = re.match(r"-?[^\W\d_]|\(\w\)", after)
    if glued and not scale and not m.group("pct"):
        return None  # "10-K", "3x", "5th", "401(k)": an identifier or ordinal, not a figure
    if scale:
        end = m.end("scale")
        if m.group().endswith(".") and scale_word in ABBREVIATED:
            end += 1
    else:
        end = max(m.end("digits"), m.end("cur2"), m.end("pct"))
        scale = 1.0
    value, precision = parse_number(digits)
    if m.group("pct"):
        kind: Kind = "percent"
    elif currency or scale != 1.0:
        kind = "amount"
    elif precision == 1.0 and 1900 <= value <= 2100 and re.fullmatch(r"\d{4}", digits):
        kind = "year"
    else:
        kind = "count"
    return Figure(
        text[start:end], start, end, kind, value * scale, precision * scale, scaled=scale != 1.0
    )


def scale_context(text: str) -> set[float]:
    """Scales a passage declares for its bare numbers ("in millions" -> {1e6})."""
    out = set()
    for m in SCALE_CONTEXT_RE.finditer(text):
        word = (m.group(1) or m.group(2)).lower()
        out.add(SCALES[word])
    return out
