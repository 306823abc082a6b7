"""The document prior: which documents a question is about, from whole-document scores.

``ingest.lexical_docs`` scores a question against every whole document (its text, and its
opening weighted beside it). From those scores the retriever takes:

- the **prior**: each document's score rescaled so the best scores 1 and ``PRIOR_FLOOR``
  of the best 0 (documents further behind get nothing); each candidate chunk gets
  ``document_prior`` times its document's prior on top of its fused score;
- the **named document**: the best one when it scores at least ``named_document_ratio``
  times the next ("In Acme's Q3 2023 10-Q, ..."), or when its opening outnames the
  opening of each document scoring within that ratio of it: it holds more of the
  question's words that the other lacks than the other holds that it lacks (Acme's Q3
  2023 10-Q opens with "Acme", "Q3" and "2023", its Q3 2022 and Q2 2023 10-Qs with two of
  them each: "Q3" and "2023", in most filings' openings, weigh little in the scores; a
  subject word such as "changes" opening some other filing does not outweigh them); its
  passages may fill the results past the per-document cap, while a question that matches
  several documents alike ("how did revenue change over the last four quarters") keeps the
  cap and so its spread;
- for a question asking for the **newest** document (``ingest.doc_dates``), the dated
  documents scoring within ``latest_boost`` of the best are ordered by the date their
  opening states: the newest takes the best score, the others lose theirs, and the newest
  is the named document: "Apple's latest quarterly filing" means one filing, so its
  passages are not held to the per-document cap in favour of far weaker passages of the
  older ones.

Tuned on sec10q dev (20 filings): the prior's first document is the asked-about filing
for 31 of 67 single-filing questions with whole-document scores alone, 66 with the
opening weighted 2 and the newest-first rule. SciFact train moved by -0.003 nDCG@10.
Naming by the opening as well as by the ratio: 16 more questions named, all single-filing
and all the right filing; figure@6 30 -> 32 of 61, doc@5 0.98 -> 0.99, SciFact unchanged.
Naming the newest document of a "latest" question: figure@6 32 -> 33 (one question gained,
none lost), doc@5 unchanged. Outnaming by the words each opening holds that the other
lacks (not "all of theirs"): one more question named, the right filing; figure@6 33 -> 34.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ingest.lexical_docs import DocumentMatch

PRIOR_FLOOR = 0.8
"""Documents scoring under this share of the best one get no prior: only the documents a
question singles out are lifted, dense-only finds keep their place (SciFact Recall@100)."""


MAX_RIVALS = 16
"""A question that more documents match within ``named_document_ratio`` of the best is about
what they share, and names none of them by its opening (and their openings are not compared:
over 5,000 alike documents that took ~10 ms a question)."""


@dataclass(frozen=True, slots=True)
class DocumentPrior:
    """One collection's document prior for a question."""

    scores: dict[str, float] = field(default_factory=dict)  # document id -> prior, 0-1
    named: str | None = None  # the document the question names, if one stands out


Outnames = Callable[[str, list[str]], bool]
"""Whether the opening of a document holds more of the question's words that the opening
of each of the others lacks than that one holds and it lacks
(``LexicalIndex.opening_outnames``)."""


def document_prior(
    matches: Mapping[str, DocumentMatch],
    *,
    latest: bool,
    latest_boost: float,
    named_ratio: float,
    outnames: Outnames | None = None,
) -> DocumentPrior:
    """The prior from whole-document ``matches``; ``latest``: the question asks for the
    newest document; ``outnames``: for naming a document by its opening
    (``named_document``)."""
    if latest and latest_boost > 0:
        scores, newest = newest_first(matches, latest_boost)
    else:
        scores, newest = {doc: match.score for doc, match in matches.items()}, None
    best = max(scores.values(), default=0.0)
    if best <= 0:
        return DocumentPrior()
    floor = PRIOR_FLOOR * best
    prior = {
        doc: (score - floor) / (best - floor) for doc, score in scores.items() if score > floor
    }
    if newest is not None and named_ratio > 0:  # "the latest filing" means that one
        return DocumentPrior(prior, newest)
    return DocumentPrior(prior, named_document(scores, named_ratio, outnames))


def named_document(
    scores: Mapping[str, float], ratio: float, outnames: Outnames | None = None
) -> str | None:
    """The document scoring at least ``ratio`` times the next one, if any (0: never); or
    else, given ``outnames``, the best one if its opening outnames the opening of each
    document scoring within ``ratio`` of it, at most ``MAX_RIVALS`` of them ("Q3 2023"
    against the Q3 2022 and Q2 2023 reports)."""
    if ratio <= 0 or not scores:
        return None
    ranked = sorted(scores, key=scores.__getitem__, reverse=True)
    best = ranked[0]
    rivals = [doc for doc in ranked[1:] if scores[best] < ratio * scores[doc]]
    if not rivals:
        return best
    if outnames is not None and len(rivals) <= MAX_RIVALS and outnames(best, rivals):
        return best
    return None


def newest_first(
    matches: Mapping[str, DocumentMatch], share: float
) -> tuple[dict[str, float], str | None]:
    """Scores for a question that asks for the newest document, and that document: of the
    dated documents scoring within ``share`` of the best, the newest takes the best score
    and the others drop to ``PRIOR_FLOOR`` of theirs (no prior); the rest keep theirs.
    None (scores unchanged) when fewer than two dated documents are that close."""
    scores = {doc: match.score for doc, match in matches.items()}
    best = max(scores.values(), default=0.0)
    near = [doc for doc, m in matches.items() if m.dated and m.score >= (1 - share) * best]
    if len(near) < 2:
        return scores, None
    newest = max(near, key=lambda doc: (matches[doc].dated, matches[doc].score))
    for doc in near:
        scores[doc] = best if doc == newest else PRIOR_FLOOR * scores[doc]
    return scores, newest
