"""Whole documents in the lexical mirror: one BM25 entry per document, for a document prior.

A question names its document as often as its passage: "Acme's operating cash flow in the
Q3 2022 10-Q" names a company and a filing, and the passage that answers it (a cash-flow
table row) says neither. Chunk-level rankings then pick the same row from the wrong
filing. Scoring the question against each *whole* document (every chunk's text, plus its
title and path) finds the document the question is about; the retriever adds that score,
normalised, to each candidate chunk of the document (``service.retrieval``).

Measured on sec10q dev (20 filings, 100 questions, hybrid defaults): a source document in
the top 5 for 87 -> 96 questions (whole text only, prior 0.3, floor 0.6;
``service.document_prior``); summing the scores of the top 200 lexical chunks per document
instead reached only 93.

A document names itself up front: a cover page, a letterhead, a policy's title block say
which company, period or policy it is, while the body repeats "Q3" or "2023" about
everything else. So each entry also has a ``head`` field (title, path and the first
``HEAD_TOKENS`` tokens of text, in chunk order), weighted beside the body
(``RetrievalSettings.head_weight``), and the latest date stated in that opening
(``ingest.doc_dates``), for questions that ask for the newest document. With both, the
first document is the asked-about filing for 66 of sec10q dev's 67 single-filing
questions, against 31 on whole text alone.

Like the chunk mirror, this is derived from Chroma alone (``ingest.lexical`` syncs it in
the same locked pass): each entry stores a signature of its document's chunk ids, so a
sync re-reads exactly the documents whose chunks changed and drops those with none left.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.doc_dates import opening_date
from ingest.index import META_POSITION, chunk_document
from ingest.lexical_text import ParsedQuery, body_tokens

FETCH_BATCH = 5000
WRITER_HEAP = 50_000_000
HEAD_TOKENS = 400  # body tokens of a document's opening in its head field


@dataclass(frozen=True, slots=True)
class DocumentMatch:
    """A whole document's match for a question."""

    score: float  # BM25 of the body plus ``head_weight`` times BM25 of the head
    dated: int  # the latest date its opening states, YYYYMMDD; 0 when none


def _schema() -> Any:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("doc", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("sig", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("body", tokenizer_name="whitespace", index_option="freq")
    builder.add_text_field("head", tokenizer_name="whitespace", index_option="freq")
    builder.add_unsigned_field("dated", stored=True)
    return builder.build()


@contextmanager
def committed_writer(index: Any) -> Iterator[Any]:
    """A tantivy writer whose work is committed at the end of the block, rolled back if
    it raises; the index is reloaded afterwards so searches see the commit."""
    writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
    try:
        yield writer
        writer.commit()
    except BaseException:
        writer.rollback()
        raise
    finally:
        writer.wait_merging_threads()
    index.reload()


def signature(chunk_ids: Iterable[str]) -> str:
    """What a document's entry was built from: a hash of its sorted chunk ids."""
    digest = hashlib.blake2b(digest_size=12)
    for cid in sorted(chunk_ids):
        digest.update(cid.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _read_documents(
    coll: Any, ids_by_doc: Mapping[str, list[str]]
) -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """Each document's chunks (text, metadata) from Chroma, several documents per read (one
    read per document made a run of 2,000 small files wait ~10 s at its end), at most about
    ``FETCH_BATCH`` chunks in memory beyond one document's."""
    group: list[str] = []
    size = 0
    docs = list(ids_by_doc)
    for i, doc in enumerate(docs):
        group.append(doc)
        size += len(ids_by_doc[doc])
        if size < FETCH_BATCH and i + 1 < len(docs):
            continue
        ids = [cid for member in group for cid in ids_by_doc[member]]
        read: dict[str, tuple[str, dict[str, Any]]] = {}
        for start in range(0, len(ids), FETCH_BATCH):
            got = coll.get(ids=ids[start : start + FETCH_BATCH], include=["documents", "metadatas"])
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"]):
                read[cid] = (text or "", dict(meta or {}))
        for member in group:
            yield member, [read[cid] for cid in ids_by_doc[member] if cid in read]
        group, size = [], 0


def group_by_document(chunk_ids: Iterable[str]) -> dict[str, list[str]]:
    """Chunk ids by the document they belong to."""
    out: dict[str, list[str]] = {}
    for cid in chunk_ids:
        out.setdefault(chunk_document(cid), []).append(cid)
    return out


class DocumentIndex:
    """The per-document BM25 index of one collection's mirror (``<mirror>/docs``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._index: Any = None
        self._schema: Any = None

    def _open(self) -> Any:
        import tantivy

        if self._index is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._schema = _schema()
            self._index = tantivy.Index(self._schema, path=str(self.root))
        return self._index

    def wipe(self) -> None:
        self._index = None
        shutil.rmtree(self.root, ignore_errors=True)

    def naming(self, document_id: str, terms: Iterable[str], share: float) -> set[str]:
        """Those of ``terms`` that the document's opening (title, path, first words) holds
        and at most ``share`` of the documents' openings do: the words that tell this
        document from the others (company, period), not the ones all of them open with
        (form, table of contents)."""
        import tantivy

        index = self._open()
        schema = self._schema
        searcher = index.searcher()
        most = share * searcher.num_docs
        this = tantivy.Query.term_query(schema, "doc", document_id)
        found = set()
        for term in terms:
            if searcher.doc_freq("head", term) > most:
                continue
            both = tantivy.Query.boolean_query(
                [
                    (tantivy.Occur.Must, this),
                    (tantivy.Occur.Must, tantivy.Query.term_query(schema, "head", term)),
                ]
            )
            if searcher.search(both, 1, count=True).count:
                found.add(term)
        return found

    def opening_outnames(self, best: str, rivals: Sequence[str], terms: Iterable[str]) -> bool:
        """Whether the opening of ``best`` outnames the opening of each of ``rivals``: it
        holds more of ``terms`` that the rival's lacks than the rival's holds that it
        lacks. "Apple's Q3 2023 10-Q ... changes in inventory" names the Q3 2023 filing
        (it alone opens with "Apple", "Q3" and "2023"), though another company's filing may
        open with "changes" and the Q3 2022 one with "Apple" and "Q3"."""
        import tantivy

        must = tantivy.Occur.Must
        searcher = self._open().searcher()
        schema = self._schema
        among = (must, tantivy.Query.term_set_query(schema, "doc", [best, *rivals]))

        def holders(term: str) -> set[str]:
            held = (must, tantivy.Query.term_query(schema, "head", term))
            found = searcher.search(tantivy.Query.boolean_query([among, held]), len(rivals) + 1)
            return {str(searcher.doc(address)["doc"][0]) for _, address in found.hits}

        by_term = [holders(term) for term in dict.fromkeys(terms)]
        mine = [docs for docs in by_term if best in docs]
        if not mine:
            return False
        theirs = [docs for docs in by_term if best not in docs]
        return all(
            sum(rival not in docs for docs in mine) > sum(rival in docs for docs in theirs)
            for rival in rivals
        )

    def count(self) -> int:
        """Entries on disk now."""
        index = self._open()
        index.reload()
        return int(index.searcher().num_docs)

    def entries(self) -> dict[str, str]:
        """Document id -> signature of every entry on disk now."""
        import tantivy

        index = self._open()
        index.reload()
        searcher = index.searcher()
        if not searcher.num_docs:
            return {}
        hits = searcher.search(tantivy.Query.all_query(), searcher.num_docs, count=False).hits
        out = {}
        for _, addr in hits:
            stored = searcher.doc(addr)
            out[stored["doc"][0]] = stored["sig"][0]
        return out

    def sync(self, coll: Any, by_doc: Mapping[str, list[str]], title: Any) -> tuple[int, int]:
        """Entries for exactly the documents of ``by_doc`` (doc id -> its chunk ids in
        Chroma), re-reading those whose chunks changed. ``title(metadata)`` gives a chunk's
        document words. Returns (documents written, documents removed)."""
        import tantivy

        index = self._open()
        have = self.entries()
        wanted = {doc: signature(ids) for doc, ids in by_doc.items()}
        stale = [doc for doc, sig in wanted.items() if have.get(doc) != sig]
        gone = [doc for doc in have if doc not in wanted]
        if not stale and not gone:
            return 0, 0
        with committed_writer(index) as writer:
            for doc in [*gone, *stale]:
                if doc in have:
                    writer.delete_documents_by_query(
                        tantivy.Query.term_query(self._schema, "doc", doc)
                    )
            for doc, read in _read_documents(coll, {doc: by_doc[doc] for doc in stale}):
                writer.add_document(self._entry(doc, read, wanted[doc], title))
        return len(stale), len(gone)

    def _entry(self, doc: str, read: list[tuple[str, dict[str, Any]]], sig: str, title: Any) -> Any:
        import tantivy

        chunks: list[tuple[int, str]] = []  # (position, text)
        words = ""
        for text, meta in read:
            chunks.append((int(meta.get(META_POSITION) or 0), text))
            words = words or title(meta)
        chunks.sort(key=lambda chunk: chunk[0])
        tokens = [token for _, text in chunks for token in body_tokens(text)]
        title_tokens = body_tokens(words)
        parts, words_seen = [], 0
        for _, text in chunks:  # the first chunks, up to about HEAD_TOKENS tokens
            if words_seen >= HEAD_TOKENS:
                break
            parts.append(text)
            words_seen += len(text.split())
        opening = "\n".join(parts)
        entry = tantivy.Document()
        entry.add_text("doc", doc)
        entry.add_text("sig", sig)
        entry.add_text("body", " ".join([*tokens, *title_tokens]))
        entry.add_text("head", " ".join([*title_tokens, *body_tokens(opening)[:HEAD_TOKENS]]))
        entry.add_unsigned("dated", opening_date(opening))
        return entry

    def search(
        self, query: ParsedQuery, k: int, head_weight: float = 1.0
    ) -> dict[str, DocumentMatch]:
        """The question's words against whole documents (body, and head weighted
        ``head_weight``): doc id -> its match, best ``k``."""
        if not query.terms:
            return {}
        import tantivy

        index = self._open()
        schema = self._schema
        terms = query.words
        should = [
            (tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t)) for t in terms
        ]
        should += [
            (
                tantivy.Occur.Should,
                tantivy.Query.boost_query(tantivy.Query.term_query(schema, "head", t), head_weight),
            )
            for t in terms
        ]
        searcher = index.searcher()
        hits = searcher.search(tantivy.Query.boolean_query(should), k, count=False).hits
        out = {}
        for score, addr in hits:
            stored = searcher.doc(addr)
            dated = stored["dated"]
            out[stored["doc"][0]] = DocumentMatch(float(score), int(dated[0]) if dated else 0)
        return out
