"""Retriever against a real embedded Chroma store and the real encoder."""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from pathlib import Path

import anyio
import numpy as np
import pytest

from ingest.embed import EmbedderInfo
from ingest.errors import CollectionNotFound, EmbedderMismatch
from ingest.index import META_COLLECTION, ChromaIndex, make_chroma_client
from ingest.settings import IngestSettings
from service.caller import ANONYMOUS
from service.errors import NoDocuments
from service.passages import META_PASSAGE_CHUNKS
from service.query_encoder import BatchingEncoder
from service.retrieval import Retriever
from tests.service.api_support import DEFAULT_DOCS, Doc, build_index, make_retriever

EXTRA = Doc("other", "x.txt", "Cafeteria Menu", ["Lunch is served from noon; soup on Mondays."])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("index")
    build_index(path, [*DEFAULT_DOCS, EXTRA])
    client = make_chroma_client(IngestSettings(data_dir=path))
    ChromaIndex(client, EmbedderInfo("someone/else", 384)).collection("alien", create=True)
    ChromaIndex(client, make_retriever(path).index.embedder).collection("empty", create=True)
    return path


@pytest.fixture(scope="module")
def retriever(data_dir: Path) -> Retriever:
    return make_retriever(data_dir)


def search(retriever: Retriever, text: str, collections: list[str], k: int = 3) -> list:
    return anyio.run(partial(retriever.search, caller=ANONYMOUS), text, collections, k)


def test_best_passage_first_and_top_k_respected(retriever: Retriever) -> None:
    hits = search(retriever, "How many paid vacation days do new staff get?", ["main"], 2)

    assert len(hits) == 2
    assert "25 days of paid vacation" in hits[0].text
    assert hits[0].score >= hits[1].score


def test_results_merge_across_collections_by_score(retriever: Retriever) -> None:
    hits = search(retriever, "When are salaries paid each month?", ["main", "finance"], 4)

    assert hits[0].metadata[META_COLLECTION] == "finance"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert {h.metadata[META_COLLECTION] for h in hits} == {"main", "finance"}


def test_only_the_named_collections_are_searched(retriever: Retriever) -> None:
    hits = search(retriever, "soup for lunch", ["main"], 10)

    assert all(h.metadata[META_COLLECTION] == "main" for h in hits)
    # every chunk of "main" (the handbook's three as one passage), nothing from "other"
    assert sorted(len(h.metadata.get(META_PASSAGE_CHUNKS, (h.id,))) for h in hits) == [1, 3]


def test_unknown_collection_is_collection_not_found(retriever: Retriever) -> None:
    with pytest.raises(CollectionNotFound):
        search(retriever, "anything", ["main", "nosuch"])


def test_collection_built_with_another_encoder_is_embedder_mismatch(
    retriever: Retriever,
) -> None:
    with pytest.raises(EmbedderMismatch, match="someone/else"):
        search(retriever, "anything", ["alien"])


def test_empty_collection_or_no_collection_is_no_documents(retriever: Retriever) -> None:
    with pytest.raises(NoDocuments, match="inhouse ingest"):
        search(retriever, "anything", ["empty"])
    with pytest.raises(NoDocuments):
        search(retriever, "anything", [])


def test_a_collection_recreated_behind_our_back_is_reopened(data_dir: Path) -> None:
    retriever = make_retriever(data_dir)
    assert search(retriever, "soup", ["other"])  # caches the collection handle
    client = make_chroma_client(IngestSettings(data_dir=data_dir))
    client.delete_collection("inhouse-other")
    build_index(data_dir, [EXTRA])  # an ingest run re-creates it

    hits = search(retriever, "soup", ["other"])

    assert hits and "soup" in hits[0].text


def test_describe_counts_documents_and_chunks(retriever: Retriever) -> None:
    names = anyio.run(retriever.known_collections)
    assert {"main", "finance", "other", "empty", "alien"} <= set(names)

    infos = {i.name: i for i in anyio.run(retriever.describe, ["main", "finance", "empty"])}

    assert (infos["main"].documents, infos["main"].chunks) == (2, 4)
    assert (infos["finance"].documents, infos["finance"].chunks) == (1, 1)
    assert (infos["empty"].documents, infos["empty"].chunks) == (0, 0)
    assert infos["main"].embedder == "sentence-transformers/all-MiniLM-L6-v2"
    assert infos["main"].last_indexed_at is not None


class SlowEmbedder:
    """Records batch sizes; every call blocks until released (``started`` says one began)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def encode(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        self.started.set()
        assert self.release.wait(120), "never released"
        if "boom" in texts:
            raise RuntimeError("encoder failed")
        return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)


def test_questions_asked_together_share_one_encoder_pass() -> None:
    embedder = SlowEmbedder()
    encoder = BatchingEncoder(embedder)  # type: ignore[arg-type]

    async def go() -> list[np.ndarray]:
        first = asyncio.ensure_future(encoder.encode("a"))
        assert await asyncio.to_thread(embedder.started.wait, 120)  # the worker is busy with "a"
        rest = [asyncio.ensure_future(encoder.encode("x" * n)) for n in range(2, 12)]
        await asyncio.sleep(0)  # one loop turn: each task has queued its question
        embedder.release.set()
        return list(await asyncio.gather(first, *rest))

    vectors = asyncio.run(go())
    encoder.close()

    assert [len(b) for b in embedder.batches] == [1, 10]
    assert [int(v[0]) for v in vectors] == [1, *range(2, 12)]  # each got its own vector


def test_texts_asked_together_are_one_batch_and_each_gets_its_vector() -> None:
    embedder = SlowEmbedder()
    embedder.release.set()
    encoder = BatchingEncoder(embedder)  # type: ignore[arg-type]

    async def go() -> list[list[np.ndarray]]:
        first = asyncio.ensure_future(encoder.encode_many(["abc", "de"]))
        assert await asyncio.to_thread(embedder.started.wait, 120)
        return [await first, await encoder.encode_many(["f", "ghij", "kl"])]

    pair, three = asyncio.run(go())
    encoder.close()

    assert [len(b) for b in embedder.batches] == [2, 3]
    assert [int(v[0]) for v in pair] == [3, 2] and [int(v[0]) for v in three] == [1, 4, 2]


def test_encoder_failures_reach_every_waiting_question_and_cancelled_ones_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    embedder = SlowEmbedder()
    embedder.release.set()
    encoder = BatchingEncoder(embedder)  # type: ignore[arg-type]

    async def go() -> None:
        with pytest.raises(RuntimeError, match="encoder failed"):
            await encoder.encode("boom")
        waiting = asyncio.ensure_future(encoder.encode("cancel me"))
        waiting.cancel()
        assert (await encoder.encode("fine"))[0] == 4.0

    asyncio.run(go())
    encoder.close()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # no InvalidStateError
