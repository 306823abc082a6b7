"""Question encoders follow what each collection records: float or int8, whatever is set."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ingest.embed import DEFAULT_DIMENSION, DEFAULT_MODEL_NAME, Embedder, EmbedderInfo
from ingest.errors import EmbedderMismatch
from ingest.settings import EmbedSettings
from service.query_encoder import QueryEncoders

FLOAT = EmbedderInfo(DEFAULT_MODEL_NAME, DEFAULT_DIMENSION)
INT8 = EmbedderInfo(DEFAULT_MODEL_NAME + "+int8", DEFAULT_DIMENSION)
TEXTS = ["quarterly revenue of the services segment", "zebrafish fin regeneration"]


@pytest.mark.parametrize("configured", ["none", "int8"])
def test_each_collection_gets_the_encoder_it_was_built_with(configured: str) -> None:
    encoders = QueryEncoders(Embedder(EmbedSettings(quantize=configured)))
    try:
        got = {}
        for recorded in (FLOAT, INT8):
            info, encoder = encoders.choose(recorded)
            assert info == recorded
            got[recorded.name] = encoder
        vectors = {
            name: np.stack([asyncio.run(encoder.encode(text)) for text in TEXTS])
            for name, encoder in got.items()
        }
        close = (vectors[FLOAT.name] * vectors[INT8.name]).sum(axis=1)
        assert (close > 0.95).all() and (close < 0.9999).all(), close  # near, not the same
        with pytest.raises(EmbedderMismatch):
            encoders.choose(EmbedderInfo("someone/else", DEFAULT_DIMENSION))
    finally:
        encoders.close()
