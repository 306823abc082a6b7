"""Structure-aware chunking with llama-index's SentenceSplitter, sized in embedder word-pieces.

Rules:
- Page numbers, page breaks and running headers/footers (the same text, digits aside,
  on 3+ pages) are dropped; a one-off "header" is kept as text. Short lines at the top or
  bottom of 3+ pages count as running text whatever their category (PDF footers such as
  "ACME Inc. | Q3 2023 Form 10-Q | 7" often arrive as plain text).
- A Title starts a new section once the current one holds enough text (tiny sections
  from over-eager title detection are merged into the next one). Column-header fragments
  just before a table ("Three Months Ended", "July 1, 2023") do not start one, nor do
  "titles" the parser guessed (PDF, plain text) that are sentences or their tails ("See
  accompanying notes.", "on the new process."), parenthesised notes ("(In millions)") or
  links: they would become the section name in the context line of every chunk that
  follows. Marked headings (Markdown, DOCX, HTML) always count.
- Tables stay whole where they fit the window; bigger ones split on row boundaries. The
  short text just before a table (its caption, units, column-header fragments) travels
  with the table and is repeated in every piece of it, so a table chunk always says what
  its figures are; where the lead and the column headers together would take more than
  half the window, the lead goes with the first piece and the column headers with every
  piece. A table without a header line repeats none (never its first row).
- Every chunk is embedded with a context line (file name - section) in front of its
  passage, and the whole, context included, fits the embedder's window: 100% of the text
  is embedded. Chroma stores the passage (``Chunk.body``); title and section are metadata.
- Measuring: a text being split is tokenized once; its paragraphs, sentences and merged
  chunks are counted from those offsets (``ingest.slice_counts``), with the same chunks.
  1,000 SciFact abstracts, 20 sec10q filings and the example documents: identical chunks
  in ~15-30% less chunking CPU time.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.documents import Chunk, ParsedDocument, ParsedElement
from ingest.settings import ChunkSettings
from ingest.slice_counts import SliceCounts, Spans
from ingest.tables import CELL_SEPARATOR, is_value

if TYPE_CHECKING:
    from llama_index.core.node_parser import SentenceSplitter

    from ingest.embed import Embedder

DROPPED_CATEGORIES = frozenset({"PageNumber", "PageBreak", "Image"})
RUNNING_CATEGORIES = frozenset({"Header", "Footer"})
RUNNING_MIN_REPEATS = 3  # a header/footer seen this often is page furniture, not content
TITLE_CATEGORIES = frozenset({"Title"})
TABLE_CATEGORIES = frozenset({"Table"})
# file types whose titles the parser guesses from the look of a line (not marked headings)
GUESSED_TITLE_TYPES = frozenset({"pdf", "txt"})
MIN_SECTION_TOKENS = 48
LEAD_ELEMENT_TOKENS = 48  # a caption or header fragment before a table is at most this long
MAX_LEAD_TOKENS = 96
FRAGMENT_WORDS = 8  # a column-header fragment: this many words at most, no sentence end
EDGE_ELEMENTS = 2  # elements at each end of a page that may be running text
EDGE_MAX_WORDS = 16
MAX_CONTEXT_TOKENS = 48
SPECIAL_TOKENS = 2  # [CLS] and [SEP]
TOKENIZE_CACHE = 4096  # texts whose word-pieces are remembered (a few MB at most)

Tokenize = Callable[[str], list[str]]


@dataclass(slots=True)
class _Section:
    title: str | None
    parts: list[ParsedElement] = field(default_factory=list)
    tokens: int = 0


class Chunker:
    """Turns a parsed document into chunks that each fit the embedder window."""

    def __init__(
        self,
        settings: ChunkSettings,
        tokenize: Tokenize,
        window: int,
        spans: Spans | None = None,
    ) -> None:
        """``spans``: word-piece offsets of a text (``Embedder.word_piece_spans``), so that
        the slices of a text being split are measured from one tokenization of it.
        One chunker serves one thread at a time."""
        self._settings = settings
        # the same strings are measured again and again (a table's row groups, then each
        # group as it is fitted; context lines; the splitter's candidates): cached, a
        # sec10q filing chunks in ~40% less time with the same chunks
        self._tokenize = functools.lru_cache(maxsize=TOKENIZE_CACHE)(tokenize)
        self._spans = spans
        self._slices: tuple[str, SliceCounts] | None = None  # the text _split is splitting
        self._budget = window - SPECIAL_TOKENS
        self._splitters: dict[int, SentenceSplitter] = {}

    def chunk(self, doc: ParsedDocument, doc_title: str) -> list[Chunk]:
        chunks: list[Chunk] = []
        guessed = doc.file_type in GUESSED_TITLE_TYPES
        for section in self._sections(doc.elements, guessed_titles=guessed):
            for text, pages, is_table in self._section_pieces(section, doc_title):
                chunks.append(
                    Chunk(
                        text=text,
                        body=text.split("\n", 1)[1],
                        position=len(chunks),
                        section_title=section.title,
                        pages=pages,
                        is_table=is_table,
                    )
                )
        return chunks

    def embedding_text(self, file_name: str, section_title: str | None, passage: str) -> str:
        """What ``chunk`` gives the encoder for a stored passage (context line + passage):
        re-embedding from the index (``ingest.reembed``) rebuilds it with this."""
        return self._join(self._context_line(file_name, section_title), passage)

    # -- sections -------------------------------------------------------------------
    def _sections(
        self, elements: tuple[ParsedElement, ...], *, guessed_titles: bool = False
    ) -> Iterator[_Section]:
        kept = _content(elements)
        current = _Section(title=None)
        for i, element in enumerate(kept):
            text = element.text.strip()
            starts_section = (
                element.category in TITLE_CATEGORIES
                and (not guessed_titles or _heading(text))
                and not _table_fragment(kept, i)
            )
            if starts_section and current.tokens >= MIN_SECTION_TOKENS:
                yield current
                current = _Section(title=None)
            if starts_section and current.title is None:
                current.title = _one_line(text)
            current.parts.append(element)
            current.tokens += len(self._tokenize(text))
        if current.parts:
            yield current

    def _section_pieces(
        self, section: _Section, doc_title: str
    ) -> Iterator[tuple[str, tuple[int, ...], bool]]:
        context = self._context_line(doc_title, section.title)
        budget = self._budget - len(self._tokenize(context)) - 1
        run: list[ParsedElement] = []
        for element in section.parts:
            if element.category in TABLE_CATEGORIES:
                run, lead = self._split_lead(run, section.title, budget)
                yield from self._prose(run, context, budget)
                run = []
                lead_text = " ".join(" ".join(e.text.split()) for e in lead)
                for table_text in self._table_pieces(element.text.strip(), budget, lead_text):
                    yield self._join(context, table_text), _pages([*lead, element]), True
            else:
                run.append(element)
        yield from self._prose(run, context, budget)

    def _split_lead(
        self, run: list[ParsedElement], section_title: str | None, budget: int
    ) -> tuple[list[ParsedElement], list[ParsedElement]]:
        """``run`` split into the prose before a table and the short text leading into it
        (a caption, units, column-header fragments, a one-line introduction)."""
        limit = min(MAX_LEAD_TOKENS, budget // 3)
        total, start = 0, len(run)
        while start > 0:
            element = run[start - 1]
            tokens = len(self._tokenize(element.text))
            if tokens > LEAD_ELEMENT_TOKENS or total + tokens > limit:
                break
            total += tokens
            start -= 1
        lead = [e for e in run[start:] if _one_line(e.text) != section_title]
        return run[:start], lead

    def _context_line(self, doc_title: str, section_title: str | None) -> str:
        line = (
            doc_title
            if not section_title or section_title == doc_title
            else (f"{doc_title} - {section_title}")
        )
        pieces = self._tokenize(line)
        if len(pieces) > MAX_CONTEXT_TOKENS:  # keep a prefix of a pathological title
            line = line[: max(16, len(line) * MAX_CONTEXT_TOKENS // len(pieces))] + "..."
        return line

    # -- prose ------------------------------------------------------------------------
    def _prose(
        self, elements: list[ParsedElement], context: str, budget: int
    ) -> Iterator[tuple[str, tuple[int, ...], bool]]:
        if not elements:
            return
        texts = [e.text.strip() for e in elements]
        body = "\n\n".join(texts)
        starts, cursor = [], 0
        for text in texts:
            starts.append(cursor)
            cursor += len(text) + 2
        search_from = 0
        for piece in self._split(body, budget):
            found = body.find(piece[:64], max(0, search_from - 1))
            begin = found if found >= 0 else search_from
            end = begin + len(piece)
            search_from = begin + 1
            covered = [
                e for e, s, t in zip(elements, starts, texts) if s < end and s + len(t) > begin
            ]
            yield self._join(context, piece), _pages(covered or elements), False

    def _split(self, text: str, budget: int) -> list[str]:
        outer = self._slices
        if self._spans is not None:
            self._slices = (text, SliceCounts(text, self._spans))
        try:
            pieces = self._splitter(budget).split_text(text)
            out: list[str] = []
            for piece in pieces:
                out.extend(self._hard_split(piece, budget))
        finally:
            self._slices = outer
        return [p for p in out if p.strip()]

    def _count(self, text: str) -> int:
        """Word-pieces of ``text``: from the offsets of the text being split when it is a
        slice of it (its paragraphs, sentences, merged chunks), else tokenized."""
        if self._slices is not None and text != self._slices[0]:
            counted = self._slices[1].count(text)
            if counted is not None:
                return counted
        return len(self._tokenize(text))

    def _measure(self, text: str) -> Sized:
        """The splitter's tokenizer: it only takes the length."""
        return range(self._count(text))

    @classmethod
    def for_embedder(cls, settings: ChunkSettings, embedder: Embedder) -> Chunker:
        """A chunker measuring with ``embedder``'s tokenizer, window and word-piece offsets."""
        return cls(settings, embedder.tokenize, embedder.max_tokens, embedder.word_piece_spans)

    def warm_up(self) -> None:
        """Import the sentence splitter (llama-index: seconds) before the first document."""
        self._splitter(self._settings.tokens)

    def _splitter(self, budget: int) -> SentenceSplitter:
        size = max(16, min(self._settings.tokens, budget))
        if size not in self._splitters:
            from llama_index.core.node_parser import SentenceSplitter

            from ingest.offline import configure_llama_index

            configure_llama_index()
            self._splitters[size] = SentenceSplitter(
                chunk_size=size,
                chunk_overlap=min(self._settings.overlap, size // 4),
                tokenizer=self._measure,
                paragraph_separator="\n\n",
            )
        return self._splitters[size]

    def _hard_split(self, text: str, budget: int) -> list[str]:
        """Guarantee the window: cut anything still too long on word boundaries."""
        if self._count(text) <= budget:
            return [text]
        words, out, current = text.split(" "), [], ""
        for word in words:
            candidate = f"{current} {word}" if current else word
            if current and self._count(candidate) > budget:
                out.append(current)
                current = word
            else:
                current = candidate
        if current:
            out.append(current)
        final: list[str] = []
        for piece in out:  # a single "word" longer than the window: cut by characters
            while self._count(piece) > budget:
                cut = max(1, len(piece) * budget // max(1, self._count(piece)) - 1)
                final.append(piece[:cut])
                piece = piece[cut:]
            final.append(piece)
        return final

    # -- tables -------------------------------------------------------------------------
    def _table_pieces(self, text: str, budget: int, lead: str = "") -> Iterator[str]:
        """A table whole where it fits; else groups of whole rows, each under the header line.

        Tables arrive as a header line (caption or units, then the column headers) and one
        line per row (``ingest.tables.render``); every group repeats the header, so a chunk
        of rows from a long table still says what its figures are. ``lead`` (the text just
        before the table) goes first, as part of the header.
        """
        if lead:
            text = f"{lead}\n{text}"
        if len(self._tokenize(text)) <= budget:
            yield text
            return
        rows = [row for row in text.split("\n") if row.strip()]
        if len(rows) <= 1:
            yield from self._split(text, budget)
            return
        opening = ""  # the lead, when it is too long to repeat: the first piece only
        if lead and len(rows) > 2 and _header_like(rows[1]):  # the lead, then column headers
            header, body = f"{rows[0]}\n{rows[1]}", rows[2:]
            if len(self._tokenize(header)) > budget // 2:
                opening, header = rows[0], rows[1]
        elif lead or not _data_row(rows[0]):
            header, body = rows[0], rows[1:]
        else:  # no header line at all: no first row repeated as one
            header, body = "", rows
        if len(self._tokenize(header)) > budget // 2:  # a runaway header: rows on their own
            yield from self._split("\n".join(filter(None, [opening, header])), budget)
            opening = header = ""
        first = "\n".join(filter(None, [opening, header]))
        groups = self._row_groups(header, body, budget, first)
        if len(groups) > 1:  # even the pieces out: no last piece with a single row
            pieces = len(self._tokenize("\n".join(body)))
            share = -(-pieces // len(groups)) + len(self._tokenize(header)) + 8
            balanced = self._row_groups(header, body, min(budget, share), first)
            groups = balanced if len(balanced) == len(groups) else groups
        for n, group in enumerate(groups):
            head = first if n == 0 else header
            yield from self._fit("\n".join([head, *group] if head else group), budget)

    def _row_groups(
        self, header: str, rows: list[str], limit: int, first: str | None = None
    ) -> list[list[str]]:
        """Consecutive rows, as many per group as fit ``limit`` under the header line
        (``first``, when given, heads the first group instead)."""
        groups: list[list[str]] = [[]]
        for row in rows:
            head = first if first is not None and len(groups) == 1 else header
            candidate = "\n".join([head, *groups[-1], row] if head else [*groups[-1], row])
            if groups[-1] and len(self._tokenize(candidate)) > limit:
                groups.append([])
            groups[-1].append(row)
        return [g for g in groups if g]

    def _fit(self, text: str, budget: int) -> Iterator[str]:
        """Rows that fit as they are (newlines kept); one oversized row is cut to the window."""
        if len(self._tokenize(text)) <= budget:
            yield text
        else:
            yield from self._split(text, budget)

    @staticmethod
    def _join(context: str, text: str) -> str:
        return f"{context}\n{text}"


def _furniture_key(text: str) -> str:
    return "".join("#" if ch.isdigit() else ch for ch in " ".join(text.lower().split()))


def _content(elements: tuple[ParsedElement, ...]) -> list[ParsedElement]:
    """The elements that carry content: no page numbers, breaks, images or running text."""
    kept = [e for e in elements if e.text.strip() and e.category not in DROPPED_CATEGORIES]
    running = _running_texts(kept)
    edges = _page_edges(kept)
    return [
        e
        for i, e in enumerate(kept)
        if not (
            (e.category in RUNNING_CATEGORIES or i in edges) and _furniture_key(e.text) in running
        )
    ]


def _page_edges(elements: list[ParsedElement]) -> set[int]:
    """Indexes of short, non-sentence elements among the first or last few of their page."""
    by_page: dict[int, list[int]] = {}
    for i, element in enumerate(elements):
        if element.page_number is not None:
            by_page.setdefault(element.page_number, []).append(i)
    edges: set[int] = set()
    for indexes in by_page.values():
        edges.update(indexes[:EDGE_ELEMENTS])
        edges.update(indexes[-EDGE_ELEMENTS:])
    return {
        i
        for i in edges
        if len(elements[i].text.split()) <= EDGE_MAX_WORDS
        and not elements[i].text.strip().endswith((".", "?", "!"))
    }


def _running_texts(elements: list[ParsedElement]) -> set[str]:
    """Texts repeated on several pages as headers/footers or at page edges (page furniture)."""
    edges = _page_edges(elements)
    pages: dict[str, set[int | None]] = {}
    for i, element in enumerate(elements):
        if element.category in RUNNING_CATEGORIES or i in edges:
            pages.setdefault(_furniture_key(element.text), set()).add(element.page_number)
    return {key for key, seen in pages.items() if len(seen) >= RUNNING_MIN_REPEATS}


def _table_fragment(elements: list[ParsedElement], i: int) -> bool:
    """Whether element ``i`` and all after it up to a table are column-header fragments."""
    for element in elements[i:]:
        if element.category in TABLE_CATEGORIES:
            return True
        text = element.text.strip()
        if len(text.split()) > FRAGMENT_WORDS or text.endswith((".", ":", "?", "!")):
            return False
    return False


_HEADER_NUMBER = re.compile(r"\d[\d,.]*")


def _header_like(row: str) -> bool:
    """A row of column headers: no figure but years and small numbers ("July 1, 2023")."""
    for number in _HEADER_NUMBER.findall(row):
        digits = number.replace(",", "").replace(".", "")
        if len(digits) >= 3 and not (len(digits) == 4 and digits[:2] in ("19", "20")):
            return False
    return True


_URL_RE = re.compile(r"https?://|www\.", re.IGNORECASE)
_CLOSERS = "\"'”’)] "


def _heading(text: str) -> bool:
    """Whether a text the parser calls a title can head a section. Not: a sentence or its
    tail ("See accompanying notes to the financial statements.", "on the new process."),
    a parenthesised note ("(In millions)"), a link ("Our page (https://...)")."""
    line = " ".join(text.split())
    words = line.split()
    if not words or line[0].islower() or line[0] == "(" or _URL_RE.search(line):
        return False
    return not (line.rstrip(_CLOSERS).endswith((".", "!", "?")) and len(words) >= 4)


def _data_row(row: str) -> bool:
    """A table line of a label and figures only (not a header line)."""
    cells = [c.strip() for c in row.split(CELL_SEPARATOR)[1:]]
    return any(cells) and all(is_value(c) for c in cells if c)


def _pages(elements: list[ParsedElement]) -> tuple[int, ...]:
    return tuple(sorted({e.page_number for e in elements if e.page_number is not None}))


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 200 else line[:197] + "..."
