"""Zero-egress defaults: environment switches that stop libraries phoning home.

They must be in the environment before unstructured, onnxruntime, chromadb,
huggingface_hub or llama-index are imported, so ``ingest/__init__.py`` applies
them first thing; every entry point (CLI, service, worker) imports ``ingest``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

OFFLINE_ENV: Mapping[str, str] = {
    # unstructured's usage ping (scarf) and generic opt-out
    "DO_NOT_TRACK": "true",
    "SCARF_NO_ANALYTICS": "true",
    # unstructured prints an advertisement to stdout (would corrupt --json output)
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    # chromadb product telemetry
    "ANONYMIZED_TELEMETRY": "False",
    # huggingface hub / transformers: never reach a hub, no telemetry
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    # onnxruntime (loaded on the PDF path) looks up a telemetry host otherwise
    "ORT_DISABLE_TELEMETRY": "1",
    # tokenizers forks threads that deadlock in worker processes
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_offline_env() -> None:
    """Set every zero-egress switch unless the operator set it explicitly."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def configure_llama_index() -> None:
    """Pin llama-index's global LLM and embedder to local no-op models.

    Inhouse uses llama-index only for node parsing; its defaults point at a cloud
    service, so they are replaced before any llama-index component is built.
    """
    from llama_index.core import Settings
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import MockLLM

    if not isinstance(Settings._llm, MockLLM):
        Settings.llm = MockLLM()
    if not isinstance(Settings._embed_model, MockEmbedding):
        Settings.embed_model = MockEmbedding(embed_dim=384)
