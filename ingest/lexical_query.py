"""tantivy queries over the lexical mirror's chunk fields (``ingest.lexical``'s schema)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ingest.lexical_text import ParsedQuery

IDENT_BOOST = 2.0  # a compacted identifier ("hr2231") match counts double
PHRASE_BOOST = 1.5
TITLE_BOOST = 0.5  # a question word in the document's title or path (e.g. "Q3 2023 ACME")


def chunk_query(schema: Any, query: ParsedQuery) -> Any:
    """The question's words over body, identifiers and title; its quoted phrases must match."""
    import tantivy

    should = [_boosted(schema, "body", term, 1.0) for term in query.terms]
    should += [_boosted(schema, "ident", ident, IDENT_BOOST) for ident in query.identifiers]
    if TITLE_BOOST > 0:
        should += [_boosted(schema, "title", term, TITLE_BOOST) for term in query.terms]
    must = _phrases(schema, query)
    if must and should:
        return tantivy.Query.boolean_query(
            [*must, (tantivy.Occur.Should, tantivy.Query.boolean_query(should))]
        )
    return tantivy.Query.boolean_query(must or should)


def within_query(
    schema: Any, query: ParsedQuery, document_id: str, weights: Mapping[str, float]
) -> Any:
    """The question's words over one document's chunks, each word weighted by ``weights``
    (1 if absent), its identifiers as in ``chunk_query``; its quoted phrases must match."""
    import tantivy

    should = [
        _boosted(schema, "body", term, weights.get(term, 1.0))
        for term in dict.fromkeys(query.terms)
    ]
    should += [
        _boosted(schema, "ident", ident, IDENT_BOOST) for ident in dict.fromkeys(query.identifiers)
    ]
    clauses = [(tantivy.Occur.Must, tantivy.Query.term_query(schema, "doc", document_id))]
    clauses += _phrases(schema, query)
    if should:
        clauses.append((tantivy.Occur.Must, tantivy.Query.boolean_query(should)))
    return tantivy.Query.boolean_query(clauses)


def _boosted(schema: Any, field: str, term: str, boost: float) -> tuple[Any, Any]:
    import tantivy

    term_query = tantivy.Query.term_query(schema, field, term)
    if boost != 1.0:
        term_query = tantivy.Query.boost_query(term_query, boost)
    return (tantivy.Occur.Should, term_query)


def _phrases(schema: Any, query: ParsedQuery) -> list[tuple[Any, Any]]:
    import tantivy

    return [
        (tantivy.Occur.Must, tantivy.Query.boost_query(_phrase(schema, phrase), PHRASE_BOOST))
        for phrase in query.phrases
    ]


def _phrase(schema: Any, tokens: Sequence[str]) -> Any:
    import tantivy

    if len(tokens) == 1:
        return tantivy.Query.term_query(schema, "body", tokens[0])
    return tantivy.Query.phrase_query(schema, "body", list(tokens))
