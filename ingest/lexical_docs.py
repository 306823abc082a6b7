"""Whole documents in the lexical mirror: one BM25 entry per document, for a document prior.

A question names its document as often as its passage: "Acme's operating cash flow in the
Q3 2022 10-Q" names a company and a filing, and the passage that answers it (a cash-flow
table row) says neither. Chunk-level rankings then pick the same row from the wrong
filing. Scoring the question against each *whole* document (every chunk's text, plus its
title and path) finds the document the question is about; the retriever adds that score,
normalised, to each candidate chunk of the document (``service.retrieval``).

Measured on sec10q dev (20 filings, 100 questions, hybrid defaults): a source document in
the top 5 for 87 -> 96 questions (prior 0.3, floor 0.6; ``service.retrieval``); summing
the scores of the top 200 lexical chunks per document instead reached only 93.

Like the chunk mirror, this is derived from Chroma alone (``ingest.lexical`` syncs it in
the same locked pass): each entry stores a signature of its document's chunk ids, so a
sync re-reads exactly the documents whose chunks changed and drops those with none left.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ingest.index import chunk_document
from ingest.lexical_text import ParsedQuery, body_tokens

FETCH_BATCH = 5000
WRITER_HEAP = 50_000_000


def _schema() -> Any:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("doc", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("sig", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("body", tokenizer_name="whitespace", index_option="freq")
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
            for doc in stale:
                writer.add_document(self._entry(coll, doc, by_doc[doc], wanted[doc], title))
        return len(stale), len(gone)

    def _entry(self, coll: Any, doc: str, ids: list[str], sig: str, title: Any) -> Any:
        import tantivy

        tokens: list[str] = []
        words = ""
        for start in range(0, len(ids), FETCH_BATCH):
            got = coll.get(ids=ids[start : start + FETCH_BATCH], include=["documents", "metadatas"])
            for text, meta in zip(got["documents"], got["metadatas"]):
                tokens.extend(body_tokens(text or ""))
                words = words or title(meta)
        tokens.extend(body_tokens(words))
        entry = tantivy.Document()
        entry.add_text("doc", doc)
        entry.add_text("sig", sig)
        entry.add_text("body", " ".join(tokens))
        return entry

    def search(self, query: ParsedQuery, k: int) -> dict[str, float]:
        """BM25 of the question's words against whole documents: doc id -> score, best ``k``."""
        if not query.terms:
            return {}
        import tantivy

        index = self._open()
        schema = self._schema
        terms = dict.fromkeys([*query.terms, *(t for p in query.phrases for t in p)])
        q = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t)) for t in terms]
        )
        searcher = index.searcher()
        hits = searcher.search(q, k, count=False).hits
        return {searcher.doc(addr)["doc"][0]: float(score) for score, addr in hits}
