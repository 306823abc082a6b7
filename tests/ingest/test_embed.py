"""The encoder: a per-call thread count and lanes change speed only, and are undone afterwards."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import torch

from ingest.embed import Embedder


def test_fewer_threads_for_one_call_same_vectors_setting_restored(embedder: Embedder) -> None:
    texts = ["Meals are reimbursed up to 45 euros per day.", "The garage opens at 6:30."]
    before = torch.get_num_threads()
    full = embedder.encode(texts)
    narrow = embedder.encode(texts, threads=1)
    assert torch.get_num_threads() == before
    assert full.shape == narrow.shape == (2, 384)
    np.testing.assert_allclose(full, narrow, atol=1e-5)
    assert np.allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)


def test_many_texts_are_encoded_in_lanes_in_order(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [
        f"Policy {i}: claims are filed within {i * 3 + 1} days. " * (1 + i % 5) for i in range(40)
    ]
    one_by_one = np.stack([embedder.encode([text])[0] for text in texts])
    lanes: set[str] = set()
    model_encode = type(embedder.model).encode

    def noting_lane(model: Any, *args: Any, **kwargs: Any) -> Any:
        lanes.add(threading.current_thread().name)
        return model_encode(model, *args, **kwargs)

    monkeypatch.setattr(type(embedder.model), "encode", noting_lane)
    before = torch.get_num_threads()
    together = embedder.encode(texts, threads=2)

    assert len(lanes) == 2 and all(name.startswith("encode-lane") for name in lanes)
    assert torch.get_num_threads() == before
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_a_few_texts_stay_in_one_call(embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    model_encode = type(embedder.model).encode

    def noting_call(model: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(threading.current_thread().name)
        return model_encode(model, *args, **kwargs)

    monkeypatch.setattr(type(embedder.model), "encode", noting_call)
    embedder.encode(["one question"] * 9, threads=2)  # fewer than two batches of 8

    assert calls == [threading.current_thread().name]


def test_chunking_word_pieces_match_the_encoders_tokenizer_while_it_encodes(
    embedder: Embedder,
) -> None:
    texts = [
        "Net cash provided by operating activities was $3,393 million.",
        "Ünïcödé café — naïve façade; 年假政策 and Η πολιτική.",
        "HR-2231 ISO 27001 10-Q " * 200,  # far past the encoder's 256-piece window
        "",
    ]
    expected = [list(embedder.model.tokenizer.tokenize(text)) for text in texts]
    encoding = threading.Thread(target=embedder.encode, args=(["a passage to encode"] * 64,))
    encoding.start()
    try:
        got = [embedder.tokenize(text) for text in texts]
    finally:
        encoding.join()

    assert got == expected
    assert len(got[2]) > 1000  # never truncated to the window
    assert embedder.count_tokens(texts[0]) == len(expected[0])


def test_an_int8_encoder_says_so_and_stays_close_to_the_float_one(embedder: Embedder) -> None:
    from ingest.embed import DEFAULT_MODEL_NAME
    from ingest.settings import EmbedSettings

    int8 = Embedder(EmbedSettings(quantize="int8"))
    assert int8.info.name == DEFAULT_MODEL_NAME + "+int8"  # known before it loads
    texts = ["net sales of the iPhone segment", "ISO 27001 audit", "les résultats du trimestre"]
    quantized, floats = int8.encode(texts * 4), embedder.encode(texts * 4)
    assert (
        int8.info.name == DEFAULT_MODEL_NAME + "+int8" and embedder.info.name == DEFAULT_MODEL_NAME
    )
    assert np.allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-5)
    close = (quantized * floats).sum(axis=1)
    assert (close > 0.95).all() and (close < 0.9999).all(), close
    linear = [type(m).__module__ for m in int8.model.modules() if "Linear" in type(m).__name__]
    assert linear and all("quantized" in name for name in linear), linear
