"""Query service: retrieval, the R1 distill via Ollama, the HTTP API and CLI."""

import ingest  # noqa: F401  (applies the zero-egress environment first)
