"""The encoder: a per-call thread count changes speed only, and is undone afterwards."""

from __future__ import annotations

import numpy as np
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
