"""Retrieval: embed the question, search each collection's own Chroma collection and its
lexical (BM25) mirror, fuse, diversify, merge, and join neighbouring chunks into passages
(``service.passages``).

One Chroma collection per Inhouse collection, so selecting collections is selecting
what to search (no metadata filter, no filtering of results afterwards). The question
is embedded with the encoder each collection records (``QueryEncoders``: the configured
one, or the model a re-embed switched the collection to), and every Chroma query checks
that record against the vector's encoder, so a vector never meets a collection built with
another encoder (or dimension); a collection switched between the two is searched again. Every call
into the encoder, Chroma or the manifest runs in a worker thread: the event loop
never blocks on them; questions asked at the same time are embedded in one batch
(``service.query_encoder``).

Hybrid (the default, ``INHOUSE_RETRIEVAL__MODE``): the ``depth`` nearest chunks and the
``depth`` best BM25 chunks (``ingest.lexical``, brought up to date with Chroma first) are
fused (``service.fusion``), and each candidate gets a document prior
(``service.document_prior``): the question's BM25 against its whole document and its
opening (``ingest.lexical_docs``), so the filing a question names wins over the same
table row in its siblings, and may fill the results past the per-document cap. Chunks
only the lexical side found are read from Chroma by id, so a chunk is returned only while
it is in Chroma. Quoted phrases filter the candidates (unless no chunk contains them: then
they count as plain words). A lexical index that cannot be read is rebuilt, and until then
the dense ranking answers alone: never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from time import perf_counter
from typing import Any, TypeVar

import numpy as np
from anyio import to_thread

from ingest.doc_dates import asks_for_latest
from ingest.embed import Embedder, EmbedderInfo
from ingest.errors import CollectionNotFound, EmbedderMismatch, IndexUnavailable
from ingest.index import (
    META_COLLECTION,
    META_DOCUMENT_ID,
    META_POSITION,
    ChromaIndex,
    Hit,
    chunk_document,
    recorded_embedder,
)
from ingest.lexical import LexicalIndex, LexicalIndexes
from ingest.lexical_text import ParsedQuery, body_tokens, contains_phrase, parse_query
from ingest.manifest import Manifest
from ingest.settings import RetrievalSettings
from service import metrics
from service.auth import audit
from service.caller import Caller, searchable
from service.collection_reads import CollectionReads
from service.document_prior import DocumentPrior, document_prior
from service.errors import NoDocuments
from service.focus import Focus, Located, locate, rank_within
from service.fusion import fuse, min_max
from service.passages import Group, group_passages, join_group, missing
from service.query_encoder import BatchingEncoder, QueryEncoders, embed_question
from service.rerank import Reranker

log = logging.getLogger(__name__)

T = TypeVar("T")

DOCUMENT_DEPTH = 100  # documents scored for the document prior (the rest add nothing)


class Retriever(CollectionReads):
    """Nearest chunks for a question over a set of collections."""

    def __init__(
        self,
        client: Any,
        embedder: Embedder,
        manifest: Manifest,
        *,
        settings: RetrievalSettings | None = None,
        lexical_dir: Path | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        """``client``: a Chroma client (``ingest.index.make_chroma_client``); ``lexical_dir``:
        where this host keeps lexical mirrors (default: ``lexical/`` in the database's data dir);
        ``reranker``: re-orders the fused candidates (``service.rerank``)."""
        self._reranker = reranker
        self._client = client
        self._embedder = embedder
        self._manifest = manifest
        self.settings = settings or RetrievalSettings()
        self._index = ChromaIndex(client, embedder.info)
        self._encoders = QueryEncoders(embedder)
        self._lexical = LexicalIndexes(
            lexical_dir or Path(manifest.db.data_dir or manifest.db.lock_dir.parent) / "lexical",
            self.settings.refresh_s,
        )

    def describe_config(self) -> dict[str, Any]:
        """The retrieval settings, for ``inhouse eval`` reports."""
        config = self.settings.model_dump()
        config["reranker"] = str(self._reranker.path) if self._reranker else None
        return config

    @property
    def index(self) -> ChromaIndex:
        return self._index

    def _reopen(self) -> ChromaIndex:
        """A fresh index view (no cached collection handles) for the encoder as loaded."""
        self._index = ChromaIndex(self._client, self._embedder.info)
        return self._index

    async def search(
        self, text: str, collections: Sequence[str], top_k: int, *, caller: Caller
    ) -> list[Hit]:
        """The ``top_k`` best chunks over ``collections``, best first.

        The collection ACL applies here, before Chroma is touched: a collection ``caller``
        may not read is a 403 ``Forbidden`` (``searchable``), so only the caller's own
        collections are ever queried. The searched collections and returned chunk and
        document ids go to the audit log. Raises ``CollectionNotFound``,
        ``EmbedderMismatch``, ``IndexUnavailable``, or ``NoDocuments`` when the searched
        collections hold no chunks at all.
        """
        names = list(dict.fromkeys(collections))
        if not names:
            raise NoDocuments("no documents are indexed yet: add some with `inhouse ingest PATH`")
        names = searchable(caller, names, ())
        audit.note_search(names)  # recorded even if the search then fails
        started = perf_counter()
        query = parse_query(text) if self.settings.mode != "dense" else ParsedQuery()
        for attempt in (1, 2):
            plan = await to_thread.run_sync(self._plan, names)
            located = await to_thread.run_sync(self._locate, query, names, text)
            focus = located.focus
            vectors, subject = await embed_question(
                text, plan, (focus.collection, focus.subject) if focus else None
            )
            try:
                hits = await to_thread.run_sync(
                    self._search, vectors, query, names, top_k, text, located, subject
                )
                break
            except EmbedderMismatch:  # switched to another encoder since the plan: once more
                if attempt == 2:
                    raise
        audit.note_search(names, hits)
        recorder = metrics.current()
        if recorder is not None:
            recorder.observe_retrieval(perf_counter() - started)
        return hits

    def close(self) -> None:
        """Stop the question encoders' worker threads."""
        self._encoders.close()

    def _plan(self, names: list[str]) -> dict[str, tuple[EmbedderInfo, BatchingEncoder]]:
        """Each collection's encoder, from its record (a switch since the last search is
        followed: one alias read per collection)."""
        if self._index.embedder != self._embedder.info:  # the encoder finished loading
            self._reopen()
        plan = {}
        for name in names:  # every collection must exist and have an encoder here
            try:
                self._index.refresh(name)
            except Exception as exc:
                raise IndexUnavailable(f"cannot read collection {name!r}: {exc}") from exc
            coll = self._collection(name)
            plan[name] = self._encoders.choose(recorded_embedder(dict(coll.metadata or {})))
        return plan

    def _locate(self, query: ParsedQuery, names: list[str], text: str) -> Located:
        """The lexical side's findings before anything is embedded (``service.focus``)."""
        if self.settings.mode == "dense" or self.settings.document_prior <= 0 or query.empty:
            return Located()
        latest = asks_for_latest(text)
        return locate(
            {name: self._document_prior(name, query, latest) for name in names},
            self._mirror,
            query,
            text,
            self.settings,
        )

    def _search(
        self,
        vectors: dict[str, tuple[EmbedderInfo, np.ndarray]],
        query: ParsedQuery,
        names: list[str],
        top_k: int,
        text: str = "",
        located: Located | None = None,
        subject: tuple[EmbedderInfo, np.ndarray] | None = None,
    ) -> list[Hit]:
        mode = self.settings.mode
        # enough candidates for top_k after the per-document cap
        wanted = top_k if self.settings.max_per_document <= 0 else 3 * top_k + 10
        depth = max(self.settings.depth, top_k) if mode != "dense" else wanted
        dense: list[Hit] = []
        lexical: list[Hit] = []
        owner: dict[str, str] = {}  # chunk id -> collection
        located = located or Located()
        for name in names:
            found = self._candidates(name, vectors[name], query, depth)
            for hit in found[0]:
                dense.append(_in_collection(hit, name))
                owner[hit.id] = name
            for hit in found[1]:
                lexical.append(hit)
                owner[hit.id] = name
        focus, plan = Focus(), located.focus
        if plan is not None and subject is not None and mode == "hybrid":
            mirror = self._mirror(plan.collection)
            focus = rank_within(self._index, mirror, plan, query, subject, self.settings)
            owner.update((cid, plan.collection) for cid in focus.scores)
        named = located.named
        if lexical and mode != "dense":
            hits = self._fused(
                dense,
                lexical,
                owner,
                wanted,
                lexical_only=mode == "lexical",
                prior=located.prior,
                focus=focus,
            )
        else:
            hits = sorted(dense, key=lambda hit: hit.score, reverse=True)
        if self._reranker is not None:
            hits = self._reranker.rerank(text, hits)
        groups = group_passages(
            hits,
            top_k,
            cap=self.settings.max_per_document,
            document=lambda hit: (
                f"{hit.metadata.get(META_COLLECTION)}/{hit.metadata.get(META_DOCUMENT_ID)}"
            ),
            uncapped=named if len(named) == 1 else (),
            gap=self.settings.passage_gap,
            max_chunks=self.settings.passage_chunks,
        )
        hits = self._join_passages(groups)
        if not hits:
            listed = ", ".join(names)
            raise NoDocuments(
                f"no documents in {listed}: add some with `inhouse ingest PATH --collection"
                f" {names[0]}`",
                collections=names,
            )
        return hits

    def _candidates(
        self, name: str, vector: tuple[EmbedderInfo, np.ndarray], query: ParsedQuery, depth: int
    ) -> tuple[list[Hit], list[Hit]]:
        """One collection's dense and lexical candidates (lexical: ids and scores only)."""
        mode = self.settings.mode
        dense = self._query(name, vector, depth) if mode != "lexical" else []
        lexical = self._lexical_search(name, query, depth) if mode != "dense" else []
        if query.phrases:
            matching = [hit for hit in dense if _has_phrases(hit.text, query.phrases)]
            if lexical or matching:
                dense = matching
            elif mode != "dense":  # no chunk holds the phrase: its words count as plain terms
                lexical = self._lexical_search(name, replace(query, phrases=[]), depth)
        if mode == "lexical" and not lexical:  # nothing to match lexically: dense answers
            dense = self._query(name, vector, depth)
        # BM25 scales differ between indexes (their own term statistics): each collection's
        # scores are normalised before they meet other collections' (cosine is comparable)
        norms = min_max([hit.score for hit in lexical])
        return dense, [replace(hit, score=norm) for hit, norm in zip(lexical, norms)]

    def _fused(
        self,
        dense: list[Hit],
        lexical: list[Hit],
        owner: dict[str, str],
        wanted: int,
        *,
        lexical_only: bool,
        prior: dict[str, float] | None = None,
        focus: Focus | None = None,
    ) -> list[Hit]:
        """Both rankings fused over every searched collection, plus the document prior
        (``document_prior`` times the chunk's document score), the best ``wanted`` first;
        chunks only the lexical side found are read from Chroma (gone ones are skipped)."""
        dense.sort(key=lambda hit: hit.score, reverse=True)
        lexical.sort(key=lambda hit: hit.score, reverse=True)
        fused = fuse(
            [(hit.id, hit.score) for hit in dense],
            [(hit.id, hit.score) for hit in lexical],
            method=self.settings.fusion,
            weight=1.0 if lexical_only else self.settings.weight,
            rrf_k=self.settings.rrf_k,
        )
        if focus and focus.scores:  # the named document's chunks, ranked within it
            named = chunk_document(next(iter(focus.scores)))
            fused = {c: v for c, v in fused.items() if chunk_document(c) != named}
            fused.update(focus.scores)
        if prior:
            share = self.settings.document_prior
            for cid in fused:
                fused[cid] += share * prior.get(chunk_document(cid), 0.0)
        keep = sorted(fused, key=lambda cid: fused[cid], reverse=True)[:wanted]
        known = {hit.id: hit for hit in dense}
        missing: dict[str, list[str]] = {}
        for cid in keep:
            if cid not in known:
                missing.setdefault(owner[cid], []).append(cid)
        for name, ids in missing.items():
            known.update(
                (cid, _in_collection(hit, name)) for cid, hit in self._fetch(name, ids).items()
            )
        return [replace(known[cid], score=fused[cid]) for cid in keep if cid in known]

    def _join_passages(self, groups: list[Group]) -> list[Hit]:
        """Each group as one passage (``service.passages``), the chunks between its members
        read from Chroma (one read per collection; a chunk gone since is left out)."""
        read_in: dict[tuple[str, int], Hit] = {}
        by_collection: dict[str, list[Group]] = {}
        for group in groups:
            name = str(group.best.metadata.get(META_COLLECTION, ""))
            by_collection.setdefault(name, []).append(group)
        for name, members in by_collection.items():
            wanted = missing(members, self.settings.passage_gap)
            if wanted:
                read_in.update(self._read_positions(name, wanted))
        return [join_group(group, read_in) for group in groups]

    def _read_positions(
        self, name: str, wanted: dict[str, list[int]]
    ) -> dict[tuple[str, int], Hit]:
        """Chunks of collection ``name`` by (document id, position): their ids from the
        lexical mirror, their text from Chroma (dense mode, without a mirror: by a Chroma
        metadata filter, ~25 ms a document over 100k chunks); {} when that fails (the
        passage then marks the gap)."""
        try:
            if self.settings.mode == "dense":
                hits = self._where_positions(name, wanted)
            else:
                ids = self._on_mirror(
                    name,
                    lambda index: [
                        cid
                        for doc, spots in wanted.items()
                        for cid in index.chunk_ids_at(doc, spots)
                    ],
                )
                hits = list(self._fetch(name, ids).values())
        except Exception:  # noqa: BLE001 - a passage with a gap rather than no answer
            log.exception("collection %s: reading passage neighbours failed", name)
            return {}
        out = {}
        for hit in hits:
            doc, spot = hit.metadata.get(META_DOCUMENT_ID), hit.metadata.get(META_POSITION)
            if isinstance(spot, int) and spot in wanted.get(str(doc), ()):
                out[(str(doc), spot)] = _in_collection(hit, name)
        return out

    def _where_positions(self, name: str, wanted: dict[str, list[int]]) -> list[Hit]:
        clauses: list[dict[str, Any]] = [
            {"$and": [{META_DOCUMENT_ID: doc}, {META_POSITION: {"$in": spots}}]}
            for doc, spots in wanted.items()
        ]
        where = clauses[0] if len(clauses) == 1 else {"$or": clauses}
        got = self._collection(name).get(where=where, include=["documents", "metadatas"])
        return [
            Hit(cid, text or "", dict(meta or {}), 0.0)
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"])
        ]

    def _mirror(self, name: str) -> LexicalIndex:
        """The collection's lexical mirror, brought up to date (``_on_mirror``)."""
        return self._on_mirror(name, lambda index: index)

    def _document_prior(self, name: str, query: ParsedQuery, latest: bool) -> DocumentPrior:
        """One collection's document prior (``service.document_prior``); ``latest``: the
        question asks for the newest document."""
        settings = self.settings

        def prior(index: LexicalIndex) -> DocumentPrior:
            return document_prior(
                index.search_documents(query, DOCUMENT_DEPTH, settings.head_weight),
                latest=latest,
                latest_boost=settings.latest_boost,
                named_ratio=settings.named_document_ratio,
                outnames=lambda best, rivals: index.opening_outnames(query, best, rivals),
            )

        try:
            return self._on_mirror(name, prior)
        except Exception:  # noqa: BLE001 - no prior rather than no answer
            log.exception("collection %s: document scores failed; no document prior", name)
            return DocumentPrior()

    def _lexical_search(self, name: str, query: ParsedQuery, depth: int) -> list[Hit]:
        """BM25 candidates (ids and scores only); [] when the lexical side cannot answer."""
        if query.empty:
            return []
        self._collection(name)  # a missing collection is an error, not an empty answer
        try:
            found = self._on_mirror(name, lambda index: index.search(query, depth))
        except Exception:  # noqa: BLE001 - lexical trouble must not fail the search
            log.exception("collection %s: lexical search failed; dense only", name)
            return []
        return [Hit(h.id, "", {}, h.score) for h in found]

    def _on_mirror(self, name: str, use: Callable[[LexicalIndex], T]) -> T:
        """``use`` on the collection's lexical mirror, brought up to date; a mirror that
        fails is rebuilt from Chroma (with a log line) and ``use`` runs once more."""
        coll = self._collection(name)
        try:
            return use(self._lexical.current(coll, self._index.generation(name)))
        except Exception as exc:  # noqa: BLE001 - a bad mirror is rebuilt, not an error
            log.warning(
                "collection %s: lexical index unusable (%s: %s); rebuilding it from Chroma",
                name,
                type(exc).__name__,
                exc,
            )
            self._lexical.for_collection(coll).reset()
        return use(self._lexical.current(coll, self._index.generation(name)))

    def _fetch(self, name: str, ids: list[str]) -> dict[str, Hit]:
        if not ids:
            return {}
        try:
            got = self._collection(name).get(ids=ids, include=["documents", "metadatas"])
        except (CollectionNotFound, EmbedderMismatch):
            raise
        except Exception:  # dropped after a re-embed switch: the new generation has the ids
            self._reopen()
            got = self._collection(name).get(ids=ids, include=["documents", "metadatas"])
        return {
            cid: Hit(cid, text or "", dict(meta or {}), 0.0)
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"])
        }

    def _collection(self, name: str) -> Any:
        """The collection serving ``name`` (the encoder is checked where vectors meet it)."""
        try:
            return self._index.handle(name)
        except (CollectionNotFound, EmbedderMismatch):
            raise
        except Exception as exc:  # chroma raises many types; all mean "cannot read the index"
            raise IndexUnavailable(f"cannot read collection {name!r}: {exc}") from exc

    def _query(self, name: str, vector: tuple[EmbedderInfo, np.ndarray], top_k: int) -> list[Hit]:
        info, values = vector
        try:
            return self._index.query(name, values, top_k, embedder=info)
        except EmbedderMismatch:
            raise
        except Exception as first:
            # The collection may have been dropped and re-created by an ingest run in
            # another process: forget the cached handle and look it up once more.
            log.info("collection %s: re-opening after %s", name, type(first).__name__)
            self._reopen()
            self._collection(name)
            try:
                return self._index.query(name, values, top_k, embedder=info)
            except EmbedderMismatch:
                raise
            except Exception as exc:
                raise IndexUnavailable(f"cannot search collection {name!r}: {exc}") from exc


def _has_phrases(text: str, phrases: list[list[str]]) -> bool:
    tokens = body_tokens(text)
    return all(contains_phrase(tokens, phrase) for phrase in phrases)


def _in_collection(hit: Hit, name: str) -> Hit:
    if hit.metadata.get(META_COLLECTION) == name:
        return hit
    return Hit(hit.id, hit.text, {**hit.metadata, META_COLLECTION: name}, hit.score)
