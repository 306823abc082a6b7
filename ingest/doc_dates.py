"""The date a document carries in its opening words, and questions that ask for the newest.

"What was the gross margin in the latest 10-Q?" names no filing: every quarterly report
of the company matches its words equally. What tells them apart is the date each one
states up front ("For the quarterly period ended July 1, 2023", "Effective: 2024-03-01",
"Revised March 2024"). ``opening_date`` reads the latest full date in a document's
opening text (its first chunks), and ``asks_for_latest`` spots the questions for which
the retriever prefers the newest of the documents they match (``service.retrieval``).

Dates read: "July 1, 2023", "Jul. 1 2023", "1 July 2023", "July 2023" (the 1st),
"2023-07-01", "2023/07/01" and "07/01/2023" (month first). Years alone are not dates:
a page that cites "2019" is not from 2019.
"""

from __future__ import annotations

import re
from datetime import date

FIRST_YEAR, LAST_YEAR = 1900, 2199

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sept", "sep"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"(?P<year>\d{4})"
_PATTERNS = [
    re.compile(rf"\b{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+{_YEAR}\b", re.I),
    re.compile(rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}\b", re.I),
    re.compile(rf"\b{_MONTH},?\s+{_YEAR}\b", re.I),
    re.compile(r"\b(?P<year>\d{4})[-/](?P<month>\d{1,2})[-/](?P<day>\d{1,2})\b"),
    re.compile(r"\b(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})\b"),
]
_LATEST = re.compile(
    r"\b(latest|newest|most[-\s]+recent(ly)?|most[-\s]+current|current\s+version)\b", re.I
)


def asks_for_latest(question: str) -> bool:
    """Whether a question asks for the newest document ("latest", "most recent", ...)."""
    return _LATEST.search(question) is not None


def opening_date(text: str) -> int:
    """The latest date stated in ``text`` as YYYYMMDD, or 0 when it states none."""
    best = 0
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            found = _to_date(match)
            if found is not None:
                best = max(best, found.year * 10000 + found.month * 100 + found.day)
    return best


def _to_date(match: re.Match[str]) -> date | None:
    parts = match.groupdict()
    month_text = parts["month"].lower().rstrip(".")
    month = _MONTHS.get(month_text) if month_text.isalpha() else int(month_text)
    year = int(parts["year"])
    day = int(parts.get("day") or 1)
    if month is None or not FIRST_YEAR <= year <= LAST_YEAR:
        return None
    try:
        return date(year, month, day)
    except ValueError:  # "February 30", "13/45/2023"
        return None
