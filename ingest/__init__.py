"""Ingestion: files -> parsed elements -> chunks -> embeddings -> Chroma + manifest.

Importing this package applies the zero-egress environment before any
third-party library that phones home can be imported.
"""

from ingest.offline import apply_offline_env

apply_offline_env()
