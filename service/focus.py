"""Ranking the passages of the one document a question names, by the question's subject.

"What was NVIDIA's operating cash flow in the Q3 2022 10-Q?" has two parts: the words that
name a document ("NVIDIA", "Q3", "2022", "10-Q") and its subject ("operating cash flow").
The document prior (``service.document_prior``) uses the first part to find the filing.
Inside that filing, though, the naming words only favour its cover page, table of contents
and certifications, which repeat them, over the cash-flow statement, which does not: on
sec10q dev the passage holding the answer's figure was then outside the top 40 for 28 of
61 questions.

So, for the named document only (if it has at least ``MIN_CHUNKS`` chunks), its chunks are
ranked again:

- **lexical**: BM25 over the document's own chunks, the naming words weighted down to
  ``naming_weight``. The naming words are the question's words that the document's opening
  holds and at most ``NAMING_SHARE`` of the collection's openings do
  (``LexicalIndex.naming_terms``): "NVIDIA" and "Q3" tell the filing from the others,
  "10-Q" and the "cash flows" of every table of contents do not;
- **dense**: the question without its naming words, embedded in the same batch as the
  question itself (the plan is made from the lexical side first), against the document's
  own chunks' vectors, read by id (over 100k chunks, Chroma's nearest-neighbour search
  filtered to one 20-chunk document took 155 ms; reading 20 vectors by id takes 4 ms);

fused as the collection-wide rankings are, replacing those chunks' collection-wide scores.
Measured on sec10q dev (same index, ``inhouse eval``): figure@6 24 -> 30 of 61; SciFact
train unchanged (its abstracts are shorter than ``MIN_CHUNKS``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ingest.embed import EmbedderInfo
from ingest.errors import EmbedderMismatch
from ingest.index import ChromaIndex
from ingest.lexical import LexicalIndex
from ingest.lexical_text import ParsedQuery, body_tokens
from ingest.settings import RetrievalSettings
from service.document_prior import DocumentPrior
from service.fusion import fuse

log = logging.getLogger(__name__)

MIN_CHUNKS = 10
"""Shorter documents are left to the collection-wide ranking: their opening (about two
chunks) would hold most of their words, subject and all, and they have few passages to
rank anyway."""

SCORED = 2000
"""Chunks of the named document scored against the subject's embedding: all of them, up to
this many; beyond, the best this many by its words."""

NAMING_SHARE = 0.5
"""A word in more than this share of the documents' openings names none of them."""


@dataclass(frozen=True, slots=True)
class FocusPlan:
    """What ranking inside the named document needs before anything is embedded."""

    collection: str
    document: str
    chunks: int  # how many the document has
    naming: frozenset[str]  # the question's naming words (lexical tokens)
    subject: str  # the question without them: embedded beside the question itself


@dataclass(slots=True)
class Located:
    """What the lexical side finds before the question is embedded."""

    prior: dict[str, float] = field(default_factory=dict)  # document id -> score, 0-1
    named: list[str] = field(default_factory=list)  # "collection/document id", per collection
    focus: FocusPlan | None = None  # ranking inside the one named document


@dataclass(slots=True)
class Focus:
    """The named document's chunks' fused scores (0-1), by chunk id."""

    scores: dict[str, float] = field(default_factory=dict)


def without_words(text: str, terms: set[str] | frozenset[str]) -> str:
    """``text`` without its words whose tokens include one of ``terms``."""
    return " ".join(word for word in text.split() if not set(body_tokens(word)) & terms)


def plan_focus(
    mirror: LexicalIndex, named: str, query: ParsedQuery, text: str, settings: RetrievalSettings
) -> FocusPlan | None:
    """The plan for ``named`` ("collection/document id"); None when ranking inside it is
    off, or the document is too short for it (``MIN_CHUNKS``)."""
    collection, document = named.rsplit("/", 1)
    chunks = mirror.chunk_count(document)
    if settings.naming_weight >= 1 or chunks < MIN_CHUNKS:
        return None
    naming = frozenset(mirror.naming_terms(query, document, NAMING_SHARE))
    subject = without_words(text, naming) if naming else text
    return FocusPlan(collection, document, chunks, naming, subject or text)


def locate(
    priors: Mapping[str, DocumentPrior],
    mirror: Callable[[str], LexicalIndex],
    query: ParsedQuery,
    text: str,
    settings: RetrievalSettings,
) -> Located:
    """Each collection's document prior (``priors``) merged, the named documents, and the
    plan for ranking inside the one named document (``mirror``: a collection's lexical
    mirror), if exactly one collection names one."""
    located = Located()
    for name, found in priors.items():
        located.prior.update(found.scores)
        located.named += [f"{name}/{found.named}"] if found.named else []
    if len(located.named) == 1 and settings.mode == "hybrid":
        named = located.named[0]
        try:
            located.focus = plan_focus(
                mirror(named.rsplit("/", 1)[0]), named, query, text, settings
            )
        except Exception:  # noqa: BLE001 - the collection-wide ranking still answers
            log.exception("%s: no ranking inside the named document", named)
    return located


def rank_within(
    index: ChromaIndex,
    mirror: LexicalIndex,
    plan: FocusPlan,
    query: ParsedQuery,
    subject: tuple[EmbedderInfo, np.ndarray],
    settings: RetrievalSettings,
) -> Focus:
    """The chunks of the planned document ranked by the question's subject (module
    docstring); ``subject``: the embedding of ``plan.subject``. Nothing (the
    collection-wide ranking stands) if that fails."""
    try:
        weights = dict.fromkeys(plan.naming, settings.naming_weight)
        huge = plan.chunks > SCORED
        k = max(settings.depth, SCORED) if huge else settings.depth
        found = mirror.search_within(query, plan.document, weights, k)
        ids = (
            [hit.id for hit in found[:SCORED]]  # a huge document: its words' best
            if huge
            else mirror.document_chunks(plan.document, SCORED)
        )
        info, values = subject
        dense = index.nearest_among(plan.collection, ids, values, settings.depth, embedder=info)
    except EmbedderMismatch:
        raise
    except Exception:  # noqa: BLE001 - the collection-wide ranking still answers
        log.exception("collection %s: ranking inside %s failed", plan.collection, plan.document)
        return Focus()
    scores = fuse(
        dense,
        [(hit.id, hit.score) for hit in found[: settings.depth]],
        method=settings.fusion,
        weight=settings.weight,
        rrf_k=settings.rrf_k,
    )
    return Focus(scores)
