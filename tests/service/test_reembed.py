"""``inhouse reindex --reembed``: a collection rebuilt with a second encoder beside the serving
one, then switched; the retriever the service uses (configured with the first encoder, never
restarted) answers before, between build and switch (from the old generation, with the old
encoder), and after (from the new one, with the encoder the collection now records).
Real Chroma (embedded, and a ``chroma run`` server), a real second encoder made offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, Literal

import anyio
import numpy as np
import pytest

from ingest.aliases import REGISTRY, parse_physical, physical_name
from ingest.embed import Embedder
from ingest.errors import EmbedderMismatch
from ingest.index import META_SOURCE, ChromaIndex, make_chroma_client
from ingest.manifest import Manifest
from ingest.pipeline import IngestPipeline
from ingest.reembed import Reembedder
from ingest.settings import EmbedSettings, IngestSettings, RetrievalSettings
from service.caller import ANONYMOUS
from service.retrieval import Retriever
from tests.ingest.reembed_support import DIMENSION, QUESTIONS, make_projected_encoder, write_docs
from tests.service.api_support import shared_embedder

pytestmark = pytest.mark.slow
NAME = "hr"


@pytest.fixture(scope="module")
def second_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_projected_encoder(tmp_path_factory.mktemp("encoders") / "minilm-proj")


@pytest.fixture(scope="module")
def second(second_folder: Path) -> Embedder:
    embedder = Embedder(EmbedSettings(model_path=second_folder))
    embedder.encode(["warm-up"])
    return embedder


@pytest.fixture()
def indexed(tmp_path: Path) -> Iterator[IngestSettings]:
    """A collection ingested with the packaged encoder (the "old" one)."""
    settings = IngestSettings(data_dir=tmp_path / "data")
    ingest(settings, shared_embedder(), write_docs(tmp_path / "docs"))
    yield settings


def ingest(settings: IngestSettings, embedder: Embedder, docs: Path) -> None:
    pipeline = IngestPipeline(settings, embedder=embedder)
    try:
        report = pipeline.run([docs], NAME)
    finally:
        pipeline.close()
    assert not report.failed


def retriever(settings: IngestSettings, mode: Literal["hybrid", "dense"] = "hybrid") -> Retriever:
    """What ``inhouse serve`` builds: the configured (packaged) encoder."""
    return Retriever(
        make_chroma_client(settings),
        shared_embedder(),
        Manifest.open(settings),
        settings=RetrievalSettings(mode=mode),
        lexical_dir=settings.data_dir / "lexical",
    )


def search(r: Retriever, question: str, k: int = 3) -> list[Any]:
    return anyio.run(partial(r.search, caller=ANONYMOUS), question, [NAME], k)


def direct(settings: IngestSettings, physical: str, vector: np.ndarray, k: int = 3) -> list[Any]:
    """(id, cosine) of the nearest chunks of one physical collection, straight from Chroma."""
    coll = make_chroma_client(settings).get_collection(physical, embedding_function=None)
    res = coll.query(query_embeddings=[vector], n_results=k, include=["distances"])
    return [
        (cid, pytest.approx(1 - d, abs=1e-4)) for cid, d in zip(res["ids"][0], res["distances"][0])
    ]


def physical(settings: IngestSettings) -> list[str]:
    client = make_chroma_client(settings)
    return sorted(c.name for c in client.list_collections() if parse_physical(c.name))


class Stages:
    """A listener that runs ``hooks[stage]`` when the rebuild reaches it."""

    def __init__(self, **hooks: Any) -> None:
        self.hooks = hooks
        self.seen: list[str] = []

    def on_start(self, total: int) -> None:
        self.seen.append(f"start:{total}")

    def on_progress(self, done: int, total: int) -> None:
        if "progress" in self.hooks:
            self.hooks.pop("progress")()

    def on_stage(self, stage: str) -> None:
        self.seen.append(stage)
        if stage in self.hooks:
            self.hooks[stage]()


def test_search_before_during_and_after_a_switch(
    indexed: IngestSettings, second: Embedder, second_folder: Path
) -> None:
    dense = retriever(indexed, mode="dense")  # dense: scores are the raw cosine of one encoder
    hybrid = retriever(indexed)
    old, new = shared_embedder(), second
    question = "How many vacation days do I get?"

    def expect_generation(physical_name_: str, encoder: Embedder) -> None:
        got = [(hit.id, hit.score) for hit in search(dense, question)]
        assert got == direct(indexed, physical_name_, encoder.encode([question])[0])
        for q, source in QUESTIONS.items():
            assert search(hybrid, q)[0].metadata[META_SOURCE] == source

    expect_generation("inhouse-hr", old)
    between: list[str] = []

    def at_built() -> None:  # T is complete, the alias still points at L
        expect_generation("inhouse-hr", old)
        assert physical(indexed) == ["inhouse-hr", "inhouse-hr.g1"]
        between.append("checked")

    listener = Stages(built=at_built)
    report = Reembedder(indexed, embedder=new).run(NAME, listener=listener)

    assert between == ["checked"] and listener.seen[-3:] == ["built", "switched", "dropped"]
    assert report.outcome == "switched" and report.to_generation == "inhouse-hr.g1"
    assert report.to_embedder == {
        "name": "minilm-proj",
        "dimension": DIMENSION,
        "path": str(second_folder.resolve()),
    }
    assert report.chunks == report.embedded == len(QUESTIONS) + 1 and report.resumed == 0
    assert physical(indexed) == ["inhouse-hr.g1"]  # the old generation is gone
    expect_generation("inhouse-hr.g1", new)  # the unrestarted retriever follows the switch
    assert len(list((indexed.data_dir / "lexical").iterdir())) == 1  # the old mirror dropped
    rows = Manifest.open(indexed).documents(NAME)
    assert {row.embedder for row in rows} == {"minilm-proj"}

    # Ingest follows the alias: with the new encoder it adds to the new generation ...
    extra = indexed.data_dir.parent / "more"
    extra.mkdir()
    (extra / "canteen.md").write_text("# Canteen\n\nLunch is served from 11:30 to 14:00.\n")
    ingest(indexed, new, extra)
    assert search(hybrid, "when is lunch served")[0].metadata[META_SOURCE] == "canteen.md"
    assert physical(indexed) == ["inhouse-hr.g1"]
    # ... and with the old one it refuses, naming the way out
    with pytest.raises(EmbedderMismatch, match="--reembed hr"):
        ingest(indexed, old, extra)

    # Nothing to do when it already records the configured encoder.
    again = Reembedder(indexed, embedder=new).run(NAME)
    assert again.outcome == "unchanged" and again.embedded == 0
    assert physical(indexed) == ["inhouse-hr.g1"]


def test_moving_a_collection_to_the_int8_encoder_and_back(indexed: IngestSettings) -> None:
    """``INHOUSE_EMBED__QUANTIZE=int8 inhouse reindex --reembed``: recorded as int8; a service
    configured with the float encoder embeds its questions in int8 for it; unset, back."""
    int8 = Embedder(EmbedSettings(quantize="int8"))
    hybrid = retriever(indexed)  # the service's configured (float) encoder
    report = Reembedder(indexed, embedder=int8).run(NAME)
    assert report.outcome == "switched" and report.to_embedder["name"].endswith("+int8")
    for question, source in QUESTIONS.items():
        assert search(hybrid, question)[0].metadata[META_SOURCE] == source
    question = "How many vacation days do I get?"
    got = [(hit.id, hit.score) for hit in search(retriever(indexed, mode="dense"), question)]
    assert got == direct(indexed, "inhouse-hr.g1", int8.encode([question])[0])
    with pytest.raises(EmbedderMismatch, match="QUANTIZE"):
        ingest(indexed, shared_embedder(), indexed.data_dir.parent / "docs")
    back = Reembedder(indexed, embedder=shared_embedder()).run(NAME)
    assert back.outcome == "switched" and back.to_embedder["name"] == shared_embedder().info.name
    for question, source in QUESTIONS.items():
        assert search(hybrid, question)[0].metadata[META_SOURCE] == source


def test_reembedding_rebuilds_the_encoder_input_ingest_used(indexed: IngestSettings) -> None:
    """Same encoder, --force: every vector comes out as ingest wrote it (the passage and its
    context line are rebuilt from the stored metadata, not re-parsed)."""
    client = make_chroma_client(indexed)
    before = client.get_collection("inhouse-hr").get(include=["embeddings"])
    vectors = dict(zip(before["ids"], before["embeddings"]))

    assert Reembedder(indexed, embedder=shared_embedder()).run(NAME).outcome == "unchanged"
    report = Reembedder(indexed, embedder=shared_embedder()).run(NAME, force=True)

    assert report.to_generation == "inhouse-hr.g1" and report.embedded == len(vectors)
    after = make_chroma_client(indexed).get_collection("inhouse-hr.g1").get(include=["embeddings"])
    assert set(after["ids"]) == set(vectors)
    for cid, vector in zip(after["ids"], after["embeddings"]):
        assert float(np.dot(vector, vectors[cid])) > 0.9999, cid


def test_ingest_during_a_rebuild_waits_and_loses_nothing(
    indexed: IngestSettings, second: Embedder
) -> None:
    """The rebuild holds the collection's ingest lock: an ingest started meanwhile runs after
    the switch, into the new generation."""
    extra = indexed.data_dir.parent / "late"
    extra.mkdir()
    (extra / "canteen.md").write_text("# Canteen\n\nLunch is served from 11:30 to 14:00.\n")
    done = threading.Event()
    errors: list[BaseException] = []

    def late_ingest() -> None:
        try:
            ingest(indexed, second, extra)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        done.set()

    thread = threading.Thread(target=late_ingest)
    finished_early: list[bool] = []
    listener = Stages(progress=thread.start, dropped=lambda: finished_early.append(done.is_set()))
    Reembedder(indexed, embedder=second).run(NAME, listener=listener)
    thread.join(timeout=600)

    assert finished_early == [False] and not errors
    coll = make_chroma_client(indexed).get_collection("inhouse-hr.g1")
    sources = {meta[META_SOURCE] for meta in coll.get(include=["metadatas"])["metadatas"]}
    assert sources == {*(path for path in QUESTIONS.values()), "codes.md", "canteen.md"}
    assert search(retriever(indexed), "when is lunch served")[0].metadata[META_SOURCE] == (
        "canteen.md"
    )


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import ingest.reembed as reembed
    from ingest.embed import Embedder
    from ingest.settings import EmbedSettings, IngestSettings
    reembed.PAGE = 2  # several pages, so "progress" is mid-build
    stage = sys.argv[1]

    class Killer:
        def on_start(self, total): pass
        def on_progress(self, done, total):
            if stage == "progress":
                os.kill(os.getpid(), signal.SIGKILL)
        def on_stage(self, name):
            if name == stage:
                os.kill(os.getpid(), signal.SIGKILL)

    embedder = Embedder(EmbedSettings(model_path=sys.argv[2]))
    reembed.Reembedder(IngestSettings(), embedder=embedder).run("hr", listener=Killer())
    """
)


@pytest.mark.parametrize("stage", ["progress", "built", "switched"])
def test_kill_9_at_any_point_leaves_search_working_and_a_rerun_converges(
    indexed: IngestSettings, second: Embedder, second_folder: Path, stage: str
) -> None:
    env = {**os.environ, "INHOUSE_DATA_DIR": str(indexed.data_dir), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", KILLER, stage, str(second_folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == -9, done.stderr[-2000:]
    index = ChromaIndex(make_chroma_client(indexed), second.info)
    serving = index.aliases.resolve(NAME)
    assert serving == ("inhouse-hr.g1" if stage == "switched" else "inhouse-hr")
    assert physical(indexed) == ["inhouse-hr", "inhouse-hr.g1"]
    r = retriever(indexed)
    for question, source in QUESTIONS.items():  # whichever generation serves, it answers
        assert search(r, question)[0].metadata[META_SOURCE] == source

    report = Reembedder(indexed, embedder=second).run(NAME)

    assert physical(indexed) == ["inhouse-hr.g1"]
    assert index.aliases.resolve(NAME) == "inhouse-hr.g1"
    total = len(QUESTIONS) + 1
    if stage == "switched":  # nothing left to build: the old generation is dropped
        assert report.outcome == "unchanged" and report.dropped == ["inhouse-hr"]
    else:  # the build resumed: only the chunks the killed run had not written
        assert report.outcome == "switched" and report.embedded + report.resumed == total
        assert report.resumed >= (2 if stage == "progress" else total)
    assert make_chroma_client(indexed).get_collection("inhouse-hr.g1").count() == total
    for question, source in QUESTIONS.items():
        assert search(r, question)[0].metadata[META_SOURCE] == source


def test_dropping_a_collection_drops_every_generation_and_its_alias(
    indexed: IngestSettings, second: Embedder
) -> None:
    Reembedder(indexed, embedder=second).run(NAME)
    index = ChromaIndex(make_chroma_client(indexed), second.info)
    assert index.collections() == [NAME]  # one name, whatever its generation
    index.drop_collection(NAME)
    assert physical(indexed) == [] and index.collections() == []
    assert index.aliases.resolve(NAME) == physical_name(NAME, 0)
    names = [c.name for c in make_chroma_client(indexed).list_collections()]
    assert names == [REGISTRY]


def test_a_chroma_server_switch_is_seen_by_another_host(
    tmp_path: Path, second: Embedder, second_folder: Path
) -> None:
    """Host A ingests and re-embeds through the server; host B (its own data dir, the
    configured packaged encoder, unrestarted) answers before and after, with the encoder
    the collection records."""
    from tests.service.test_chroma_server_mode import ChromaServer, _free_port

    server = ChromaServer(tmp_path / "chroma-server", _free_port()).start()
    try:
        host_a = IngestSettings(data_dir=tmp_path / "host-a", chroma_url=server.url)
        host_b = IngestSettings(data_dir=tmp_path / "host-b", chroma_url=server.url)
        ingest(host_a, shared_embedder(), write_docs(tmp_path / "docs"))
        b = retriever(host_b)
        for question, source in QUESTIONS.items():
            assert search(b, question)[0].metadata[META_SOURCE] == source

        report = Reembedder(host_a, embedder=second).run(NAME)

        assert report.outcome == "switched" and physical(host_b) == ["inhouse-hr.g1"]
        assert not host_a.chroma_dir.exists()  # everything went to the server
        for question, source in QUESTIONS.items():
            assert search(b, question)[0].metadata[META_SOURCE] == source
        dense = retriever(host_b, mode="dense")
        question = "When does the garage open?"
        got = [(hit.id, hit.score) for hit in search(dense, question)]
        assert got == direct(host_b, "inhouse-hr.g1", second.encode([question])[0])
    finally:
        server.stop()


def test_a_running_service_answers_throughout_a_cli_reembed(
    indexed: IngestSettings,
    second: Embedder,
    second_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``inhouse reindex --reembed --json`` in another process while the service (packaged
    encoder configured, never restarted) answers /v1/query: every answer is right, and after
    the switch the scores are the new encoder's against the new generation."""
    import httpx

    from service.api.main import create_app
    from tests.ingest.cli_helpers import INHOUSE, inhouse_env
    from tests.service.api_support import LiveService, service_settings

    monkeypatch.setenv("INHOUSE_RETRIEVAL__MODE", "dense")  # scores: one encoder's cosine
    question, source = "When does the garage open?", QUESTIONS["When does the garage open?"]

    def ask(url: str) -> list[dict[str, Any]]:
        body = {"question": question, "collections": [NAME], "mode": "extract", "top_k": 3}
        response = httpx.post(f"{url}/v1/query", json=body, timeout=120)
        assert response.status_code == 200, response.text
        citations: list[dict[str, Any]] = response.json()["citations"]
        assert citations[0]["source"] == source
        return citations

    with LiveService(create_app(service_settings(indexed.data_dir))) as live:
        ask(live.url)
        env = inhouse_env(
            indexed.data_dir, INHOUSE_EMBED__MODEL_PATH=str(second_folder), HF_HUB_OFFLINE="1"
        )
        proc = subprocess.Popen(
            [INHOUSE, "reindex", "--reembed", NAME, "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while proc.poll() is None:  # the service keeps answering during the rebuild
            ask(live.url)
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        after = ask(live.url)

    report = json.loads(out)
    assert report["outcome"] == "switched" and report["to_generation"] == "inhouse-hr.g1"
    assert report["to_embedder"]["dimension"] == DIMENSION
    assert report["chunks"] == report["embedded"] == len(QUESTIONS) + 1
    assert {"load", "lock_wait", "read", "embed", "write", "switch", "drop", "total"} <= set(
        report["timings_s"]
    )
    expected = direct(indexed, "inhouse-hr.g1", second.encode([question])[0])
    assert [(c["chunk_id"], c["score"]) for c in after] == expected
