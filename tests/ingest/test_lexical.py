"""The lexical mirror: analysis, syncing with real embedded Chroma, rebuilds, and the
ingest run's part (written by the run, removed documents gone, unchanged reruns idle)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.embed import Embedder, EmbedderInfo
from ingest.index import ChromaIndex, StoredChunk, make_chroma_client
from ingest.lexical import LexicalIndexes, chunk_key, title_text
from ingest.lexical_docs import group_by_document
from ingest.lexical_text import body_tokens, contains_phrase, identifiers, parse_query
from ingest.pipeline import IngestPipeline
from ingest.settings import IngestSettings

INFO = EmbedderInfo("test/fake", 4)


# -- analysis -------------------------------------------------------------------------------
def test_identifiers_are_whole_tokens_and_their_parts() -> None:
    text = "Policy HR-2231 replaces FIN-0457; see the 10-Q and ISO 27001."

    assert identifiers(text) == ["hr2231", "fin0457", "10q", "iso27001"]
    tokens = body_tokens(text)
    assert contains_phrase(tokens, ["hr", "2231"]) and contains_phrase(tokens, ["10", "q"])
    assert parse_query("What does hr2231 say?").terms[0] == "hr2231"


def test_thousands_separators_and_decimals() -> None:
    assert body_tokens("Revenue was $94,836 million, up 3.25%") == body_tokens(
        "revenue was 94836 million up 3.25"
    )
    assert "1234567" in body_tokens("1,234,567 units")
    assert body_tokens("1,23") == ["1", "23"]  # not a thousands separator


def test_quoted_phrases_and_stop_words() -> None:
    query = parse_query('What is the "notice period" after probation?')

    assert query.phrases == [["notic", "period"]]
    assert query.phrase_texts == ["notice period"]
    assert "the" not in query.terms and "probat" in query.terms


@pytest.mark.parametrize("text", ["", "   ", "?!?...", "“”", '""'])
def test_empty_and_punctuation_queries_are_empty(text: str) -> None:
    assert parse_query(text).empty


def test_other_scripts() -> None:
    assert body_tokens("Η πολιτική άδειας") == ["η", "πολιτική", "άδειας"]
    assert body_tokens("年假政策") == ["年假", "假政", "政策"]  # CJK: character bigrams
    assert len(parse_query("word " * 2000).terms) == 1


# -- the mirror against real Chroma ---------------------------------------------------------
def _chunks(n: int, start: int = 0) -> list[StoredChunk]:
    return [
        StoredChunk(
            id=f"doc{i}:00000:{i:016x}",
            text=f"Policy HR-{2000 + i} covers item {i} and the amount {i},500 euros.",
            metadata={"document_id": f"doc{i}"},
        )
        for i in range(start, start + n)
    ]


def _write(index: ChromaIndex, chunks: list[StoredChunk]) -> None:
    vectors = np.random.default_rng(0).standard_normal((len(chunks), 4)).astype(np.float32)
    index.upsert("lex", chunks, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))


def _top_id(indexes: LexicalIndexes, index: ChromaIndex, text: str) -> str | None:
    coll = index.collection("lex")
    hits = indexes.current(coll, index.generation("lex")).search(parse_query(text), 3)
    return hits[0].id if hits else None


def test_sync_follows_chroma_adds_and_deletes(tmp_path: Path) -> None:
    index = ChromaIndex(make_chroma_client(IngestSettings(data_dir=tmp_path)), INFO)
    _write(index, _chunks(30))
    assert index.generation("lex").startswith("w:")  # written, not settled
    assert index.settle("lex") and index.generation("lex").startswith("c:")
    indexes = LexicalIndexes(tmp_path / "lexical")

    assert _top_id(indexes, index, "What does HR-2017 cover?") == "doc17:00000:0000000000000011"
    assert _top_id(indexes, index, "the amount of 7500 euros") == "doc7:00000:0000000000000007"

    _write(index, _chunks(5, start=30))
    index.delete_document("lex", "doc17")
    index.settle("lex")

    assert _top_id(indexes, index, "HR-2032") == "doc32:00000:0000000000000020"
    assert _top_id(indexes, index, "HR-2017") != "doc17:00000:0000000000000011"
    coll = index.collection("lex")
    mirror = indexes.for_collection(coll)
    assert mirror.keys() == {chunk_key(cid) for cid in coll.get(include=[])["ids"]}


@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_missing_or_corrupt_mirror_is_rebuilt_with_a_log_line(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    index = ChromaIndex(make_chroma_client(IngestSettings(data_dir=tmp_path)), INFO)
    _write(index, _chunks(12))
    index.settle("lex")
    LexicalIndexes(tmp_path / "lexical").current(index.collection("lex"), index.generation("lex"))
    files = tmp_path / "lexical" / str(index.collection("lex").id) / "tantivy"
    if damage == "missing":
        for path in files.iterdir():
            path.unlink()
    else:
        for path in files.iterdir():
            path.write_bytes(b"\x00garbage" * 10)
    caplog.set_level(logging.INFO, logger="ingest.lexical")

    fresh = LexicalIndexes(tmp_path / "lexical")  # a new process on this host
    assert _top_id(fresh, index, "HR-2005") == "doc5:00000:0000000000000005"
    assert any("lexical index" in r.message for r in caplog.records)


def test_title_words_break_ties_between_documents_and_old_mirrors_are_rebuilt(
    tmp_path: Path,
) -> None:
    index = ChromaIndex(make_chroma_client(IngestSettings(data_dir=tmp_path)), INFO)
    text = "Cash generated by operating activities was 98,024 in the period."
    chunks = [
        StoredChunk(
            id=f"{name}:00000:{i:016x}",
            text=text,
            metadata={"document_id": name, "source": f"filings/{name}.pdf", "title": name},
        )
        for i, name in enumerate(["2022 Q3 ACME", "2023 Q3 ACME", "2023 Q1 ACME"])
    ]
    _write(index, chunks)
    index.settle("lex")
    indexes = LexicalIndexes(tmp_path / "lexical")
    assert _top_id(indexes, index, "operating cash flow in Q3 2022") == chunks[0].id
    assert _top_id(indexes, index, "operating cash flow in Q1 2023") == chunks[2].id

    # a mirror written with an older schema is rebuilt from Chroma, not misread
    root = tmp_path / "lexical" / str(index.collection("lex").id)
    state = json.loads((root / "sync.json").read_text())
    (root / "sync.json").write_text(json.dumps({**state, "schema": 1}))
    fresh = LexicalIndexes(tmp_path / "lexical")
    assert _top_id(fresh, index, "operating cash flow in Q3 2023") == chunks[1].id
    assert json.loads((root / "sync.json").read_text())["schema"] != 1


def test_a_writing_marker_is_followed_at_the_refresh_interval(tmp_path: Path) -> None:
    index = ChromaIndex(make_chroma_client(IngestSettings(data_dir=tmp_path)), INFO)
    _write(index, _chunks(3))
    indexes = LexicalIndexes(tmp_path / "lexical", refresh_s=3600)
    assert _top_id(indexes, index, "HR-2001") == "doc1:00000:0000000000000001"

    _write(index, _chunks(1, start=3))  # same run, still writing: within the interval
    assert _top_id(indexes, index, "HR-2003") != "doc3:00000:0000000000000003"
    index.settle("lex")  # the run ends: the next query syncs
    assert _top_id(indexes, index, "HR-2003") == "doc3:00000:0000000000000003"


# -- the ingest run's part ------------------------------------------------------------------
def _policy(code: str, topic: str) -> str:
    return f"# Policy {code}\n\nThis policy ({code}) governs {topic} for all staff members.\n"


def test_ingest_writes_the_mirror_removals_and_unchanged_reruns(
    tmp_path: Path, embedder: Embedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, topic in enumerate(["travel", "parking", "laptops"]):
        (docs / f"p{i}.md").write_text(_policy(f"OPS-{4100 + i}", topic))
    settings = IngestSettings(data_dir=tmp_path / "data")
    pipeline = IngestPipeline(settings, embedder=embedder)
    try:
        pipeline.run([docs], "ops")
        coll = pipeline.index.collection("ops")
        mirror_dir = settings.data_dir / "lexical" / str(coll.id)
        marker = pipeline.index.generation("ops")
        assert marker.startswith("c:")
        assert (mirror_dir / "sync.json").is_file()  # written by the run itself
        mirror = LexicalIndexes(settings.data_dir / "lexical").for_collection(coll)
        assert mirror.keys() == {chunk_key(cid) for cid in coll.get(include=[])["ids"]}

        stamp = {p.name: p.stat().st_mtime_ns for p in mirror_dir.rglob("*")}
        pipeline.run([docs], "ops")  # unchanged: touches nothing
        assert pipeline.index.generation("ops") == marker
        assert {p.name: p.stat().st_mtime_ns for p in mirror_dir.rglob("*")} == stamp

        (docs / "p1.md").unlink()
        pipeline.run([docs], "ops")
        ids = coll.get(include=[])["ids"]
        assert ids and mirror.keys() == {chunk_key(cid) for cid in ids}
        hits = mirror.search(parse_query("OPS-4101 parking"), 5)
        assert hits and all(hit.id in ids for hit in hits)
        assert "parking" not in " ".join(coll.get(ids=[h.id for h in hits])["documents"])
    finally:
        pipeline.close()


def test_whole_documents_follow_chroma_and_score_words_spread_over_chunks(
    tmp_path: Path,
) -> None:
    index = ChromaIndex(make_chroma_client(IngestSettings(data_dir=tmp_path)), INFO)

    def doc(name: str, texts: list[str]) -> list[StoredChunk]:
        return [
            StoredChunk(id=f"{name}:{i:05d}:{i:016x}", text=t, metadata={"document_id": name})
            for i, t in enumerate(texts)
        ]

    _write(index, doc("acme", ["Acme Corporation annual report", "Revenue grew to 4,100."]))
    _write(index, doc("bolt", ["Bolt Industries annual report", "Revenue fell to 900."]))
    index.settle("lex")
    indexes = LexicalIndexes(tmp_path / "lexical")

    def scores(text: str) -> dict[str, float]:
        coll = index.collection("lex")
        found = indexes.current(coll, index.generation("lex")).search_documents(
            parse_query(text), 10
        )
        return {doc: match.score for doc, match in found.items()}

    got = scores("Acme revenue")  # no chunk holds both words; the document does
    assert max(got, key=got.__getitem__) == "acme"
    assert got["acme"] > got["bolt"] > 0

    index.delete_document("lex", "acme")
    _write(index, doc("acme2", ["Acme Corporation report, restated"]))
    index.settle("lex")
    assert set(scores("Acme revenue report")) == {"acme2", "bolt"}

    # an unchanged collection rewrites nothing (each entry keeps its chunk-id signature)
    coll = index.collection("lex")
    by_doc = group_by_document(coll.get(include=[])["ids"])
    assert indexes.for_collection(coll).documents.sync(coll, by_doc, title_text) == (0, 0)


def test_many_documents_are_read_from_chroma_together_each_into_its_own_entry(
    tmp_path: Path,
) -> None:
    index = ChromaIndex(make_chroma_client(IngestSettings(data_dir=tmp_path)), INFO)
    words = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "heath"]
    chunks = [
        StoredChunk(
            id=f"d{n}:{i:05d}:{i:016x}",
            text=f"Note {i} of file {n}: the {word} survey." if i else f"File {n} about {word}.",
            metadata={"document_id": f"d{n}", "position": i},
        )
        for n, word in enumerate(words)
        for i in range(3)
    ]
    _write(index, chunks)
    coll = index.collection("lex")
    reads: list[int] = []

    class CountingReads:
        def get(self, **kwargs: Any) -> Any:
            reads.append(len(kwargs.get("ids") or []))
            return coll.get(**kwargs)

    documents = LexicalIndexes(tmp_path / "lexical").for_collection(coll).documents
    by_doc = group_by_document(coll.get(include=[])["ids"])

    assert documents.sync(CountingReads(), by_doc, title_text) == (8, 0)
    assert reads == [24]  # one read for the eight documents, not one each
    for n, word in enumerate(words):
        found = documents.search(parse_query(f"{word} survey"), 3)
        assert max(found, key=lambda doc: found[doc].score) == f"d{n}"


def test_a_documents_opening_names_it_and_dates_it(tmp_path: Path) -> None:
    """A report that mentions a company many times deep inside (past its opening),
    against the company's own report, which names it once, up front: the opening decides."""
    index = ChromaIndex(make_chroma_client(IngestSettings(data_dir=tmp_path)), INFO)
    filler = "Sales of widgets and gears were steady across the regions this quarter."

    def doc(name: str, opening: str, body: list[str]) -> list[StoredChunk]:
        texts = [opening, *body]
        return [
            StoredChunk(
                id=f"{name}:{i:05d}:{i:016x}",
                text=t,
                metadata={"document_id": name, "position": i},
            )
            for i, t in enumerate(texts)
        ]

    _write(
        index,
        doc(
            "zentrix",
            "Zentrix Corporation. Quarterly report for the period ended July 1, 2023.",
            [filler] * 40 + [f"Our partner Vexa shipped parts; Vexa invoices rose. {filler}"] * 6,
        ),
    )
    _write(
        index,
        doc(
            "vexa",
            "Vexa Inc. Quarterly report for the period ended April 1, 2023.",
            [filler] * 40 + [f"Our partner shipped parts; invoices rose. {filler}"] * 6,
        ),
    )
    index.settle("lex")
    coll = index.collection("lex")
    mirror = LexicalIndexes(tmp_path / "lexical").current(coll, index.generation("lex"))

    def first(head_weight: float) -> str:
        found = mirror.search_documents(parse_query("Vexa quarterly report"), 10, head_weight)
        return max(found, key=lambda doc: found[doc].score)

    assert first(0.0) == "zentrix"  # the body alone: the report that repeats the name
    assert first(1.0) == "vexa"  # with the opening: the report that is Vexa's
    found = mirror.search_documents(parse_query("quarterly report"), 10)
    assert {doc: match.dated for doc, match in found.items()} == {
        "zentrix": 20230701,
        "vexa": 20230401,
    }
    # the words naming a document: in its opening, and not in every opening
    question = parse_query("What did Vexa ship in the quarterly report of April 2023?")
    assert mirror.naming_terms(question, "vexa", 0.5) == {"vexa", "april"}
    assert mirror.naming_terms(question, "zentrix", 0.5) == set()
    # Vexa's opening holds the question's words Zentrix's does ("quarterly report 2023")
    # and more ("Vexa", "April"; "ship" is deep in its body only), not the reverse
    assert mirror.opening_outnames(question, "vexa", ["zentrix"])
    assert not mirror.opening_outnames(question, "zentrix", ["vexa"])
    alike = parse_query("What was in the quarterly report of 2023?")
    assert not mirror.opening_outnames(alike, "vexa", ["zentrix"])  # the same words
    assert not mirror.opening_outnames(parse_query("invoices"), "vexa", ["zentrix"])  # neither
    # a word only the rival's opening holds ("corporation") is outweighed by two only
    # Vexa's holds ("Vexa", "April"); one against one names neither
    subject_word = parse_query(
        "In Vexa's April 2023 quarterly report, what did the corporation ship?"
    )
    assert mirror.opening_outnames(subject_word, "vexa", ["zentrix"])
    assert not mirror.opening_outnames(subject_word, "zentrix", ["vexa"])
    even = parse_query("What did the corporation ship in April?")
    assert not mirror.opening_outnames(even, "vexa", ["zentrix"])
    assert not mirror.opening_outnames(even, "zentrix", ["vexa"])
    assert mirror.chunk_count("vexa") == 47
    inside = mirror.search_within(parse_query("partner shipped parts"), "vexa", {}, 100)
    assert len(inside) == 6 and all(hit.id.startswith("vexa:") for hit in inside)
