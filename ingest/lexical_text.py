"""Text analysis for the lexical index: the same tokens for chunks and for questions.

Python owns tokenisation (tantivy indexes the tokens as given, whitespace-separated), so
the query side can build exact term and phrase queries without a query-parser syntax
that punctuation in a question could break.

- Words: lowercased, English Snowball stems (PyStemmer); other scripts are kept as they
  are, and runs of Chinese/Japanese/Korean characters become overlapping character
  bigrams (no spaces to split on).
- Numbers: thousands separators dropped ("94,836" and "94836" are one token), decimals
  kept whole ("3.25").
- Identifiers: "HR-2231", "10-Q", "ISO 27001", "FIN-0457" give their parts in the body
  field ("hr", "2231", adjacent, so the identifier also matches as a phrase) and the
  whole, compacted ("hr2231"), in a separate identifier field, so "HR2231" finds
  "HR-2231" too.
- Questions: words in double quotes are phrases; stop words are dropped from the
  other terms (they stay in the index so phrases keep their positions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

MAX_TOKEN_CHARS = 40
MAX_QUERY_TERMS = 64

_THOUSANDS = re.compile(r"(?<=\d)[,\u202f\u00a0'](?=\d{3}(?!\d))")
_TOKEN = re.compile(r"\d+(?:\.\d+)+|[^\W_]+")
_CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK = re.compile(f"[{_CJK_CHARS}]")
_CJK_RUNS = re.compile(f"[{_CJK_CHARS}]+|[^{_CJK_CHARS}]+")
# Identifier candidates: alphanumeric parts joined by - / _ . ("HR-2231", "10-Q", "v1.2");
# "ISO 27001" (capitals, one space, digits) is joined from two neighbours.
_PIECE = re.compile(r"[A-Za-z0-9]+(?:[-/_.][A-Za-z0-9]+)*")
_DIGIT = re.compile(r"\d")
_SEPARATORS = re.compile(r"[-/_.]")
_QUOTED = re.compile(r"[\"\u201c\u201d\u201e]([^\"\u201c\u201d\u201e]+)[\"\u201c\u201d\u201e]")

STOP_WORDS = frozenset(
    """a about above after again all also am an and any are as at be been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself
    just me more most my no nor not of off on once only or other our ours out over own
    same she should so some such than that the their theirs them then there these they
    this those through to too under until up very was we were what when where which while
    who whom why will with would you your yours""".split()
)


@lru_cache(maxsize=1)
def _stemmer() -> object:
    import Stemmer

    return Stemmer.Stemmer("english")


def _stem_words(words: list[str]) -> list[str]:
    return list(_stemmer().stemWords(words))  # type: ignore[attr-defined]


def normalise_numbers(text: str) -> str:
    """Drop thousands separators between digit groups ("94,836" -> "94836")."""
    return _THOUSANDS.sub("", text)


def _raw_tokens(text: str) -> list[str]:
    tokens = _TOKEN.findall(normalise_numbers(text).lower())
    if not _CJK.search(text):
        return [t for t in tokens if len(t) <= MAX_TOKEN_CHARS]
    out: list[str] = []
    for token in tokens:
        if _CJK.search(token):
            out.extend(_cjk_grams(token))
        elif len(token) <= MAX_TOKEN_CHARS:
            out.append(token)
    return out


def _cjk_grams(token: str) -> list[str]:
    """Character bigrams of CJK runs (single characters alone), other runs whole."""
    out: list[str] = []
    for run in _CJK_RUNS.findall(token):
        if _CJK.match(run):
            out.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
        elif len(run) <= MAX_TOKEN_CHARS:
            out.append(run)
    return out


def body_tokens(text: str) -> list[str]:
    """Tokens of the body field, in order (stemmed words, whole numbers, CJK bigrams)."""
    tokens = _raw_tokens(text)
    return _stem_words(tokens) if tokens else []


def identifiers(text: str) -> list[str]:
    """Compacted identifiers in ``text`` ("HR-2231" -> "hr2231"), in order, repeated."""
    if not _DIGIT.search(text):
        return []
    text = normalise_numbers(text)
    out = []
    previous: re.Match[str] | None = None
    for match in _PIECE.finditer(text):
        raw = match.group(0)
        if (
            previous is not None
            and raw.isdigit()
            and len(raw) >= 2
            and match.start() == previous.end() + 1
            and text[previous.end()] == " "
            and previous.group(0).isalpha()
            and previous.group(0).isupper()
            and len(previous.group(0)) >= 2
        ):
            out.append((previous.group(0) + raw).lower())  # "ISO 27001"
        previous = match
        if not _DIGIT.search(raw) or raw.isdigit() or raw.replace(".", "").isdigit():
            continue  # words and plain numbers are not identifiers
        compact = _SEPARATORS.sub("", raw).lower()
        if 2 < len(compact) <= MAX_TOKEN_CHARS and (compact != raw.lower() or _mixed(raw)):
            out.append(compact)
    return out


def _mixed(token: str) -> bool:
    """Letters and digits in one token ("Q3", "hr2231")."""
    return not token.isdigit() and not token.isalpha()


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A question as lexical query parts."""

    terms: list[str] = field(default_factory=list)  # body terms, stop words dropped, unique
    phrases: list[list[str]] = field(default_factory=list)  # quoted phrases (body tokens)
    identifiers: list[str] = field(default_factory=list)  # compacted identifiers, unique
    phrase_texts: list[str] = field(default_factory=list)  # quoted phrases as typed

    @property
    def empty(self) -> bool:
        return not (self.terms or self.phrases or self.identifiers)

    @property
    def words(self) -> list[str]:
        """Its terms and the words of its phrases, each once."""
        return list(dict.fromkeys([*self.terms, *(t for phrase in self.phrases for t in phrase)]))


def parse_query(text: str) -> ParsedQuery:
    """Split a question into terms, quoted phrases and identifiers."""
    phrase_texts = [p.strip() for p in _QUOTED.findall(text) if p.strip()]
    phrases = [tokens for p in phrase_texts if (tokens := body_tokens(p))]
    raw = _raw_tokens(text)
    kept = [t for t in raw if t not in STOP_WORDS] or raw
    terms = list(dict.fromkeys(_stem_words(kept)))[:MAX_QUERY_TERMS] if kept else []
    idents = list(dict.fromkeys(identifiers(text)))[:MAX_QUERY_TERMS]
    return ParsedQuery(terms, phrases, idents, phrase_texts)


def contains_phrase(tokens: list[str], phrase: list[str]) -> bool:
    """Whether ``phrase`` occurs in ``tokens`` as consecutive tokens."""
    n = len(phrase)
    if n == 0:
        return True
    first = phrase[0]
    return any(
        tokens[i] == first and tokens[i : i + n] == phrase for i in range(len(tokens) - n + 1)
    )
