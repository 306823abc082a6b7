"""The optional cross-encoder: a tiny randomly initialised one, saved in the test (no
downloads), reranks the fused candidates; without one nothing changes."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import anyio
import pytest

from ingest.embed import default_model_path
from ingest.settings import IngestSettings, RerankSettings
from service.api.deps import Resources
from service.caller import ANONYMOUS
from service.rerank import Reranker
from service.retrieval import Retriever
from tests.service.api_support import DEFAULT_DOCS, build_index, service_settings, shared_embedder


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_the_cross_encoder_orders_the_candidates(tmp_path: Path, cross_encoder: Path) -> None:
    from ingest.index import make_chroma_client
    from ingest.manifest import Manifest

    build_index(tmp_path, DEFAULT_DOCS)
    settings = IngestSettings(data_dir=tmp_path)
    reranker = Reranker(cross_encoder, candidates=10)
    retriever = Retriever(
        make_chroma_client(settings),
        shared_embedder(),
        Manifest.open(settings),
        reranker=reranker,
    )
    question = "How many vacation days do new employees get?"

    hits = anyio.run(partial(retriever.search, caller=ANONYMOUS), question, ["main"], 4)

    expected = reranker.model.predict([(question, hit.text) for hit in hits])
    assert [hit.score for hit in hits] == pytest.approx(
        [1 / (1 + math.exp(-float(s))) for s in expected], abs=1e-5
    )
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert retriever.describe_config()["reranker"] == str(cross_encoder)


def test_the_service_builds_a_reranker_only_when_configured(
    tmp_path: Path, cross_encoder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert IngestSettings().rerank == RerankSettings()  # off by default
    monkeypatch.setenv("INHOUSE_RERANK__MODEL_PATH", str(cross_encoder))
    build_index(tmp_path, DEFAULT_DOCS)
    resources = Resources(service_settings(tmp_path))

    retriever = resources.retriever()

    assert retriever.describe_config()["reranker"] == str(cross_encoder)
    hits = anyio.run(partial(retriever.search, caller=ANONYMOUS), "office hours", ["main"], 2)
    assert len(hits) == 2 and all(0 < hit.score < 1 for hit in hits)  # logistic of the model
    retriever.close()
