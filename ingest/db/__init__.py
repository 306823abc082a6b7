"""Shared state (manifest, run history, schedules, API keys, sessions) and cross-process locks,
in SQLite (the embedded default) or PostgreSQL: see ``ingest.db.engine``."""

from __future__ import annotations

from ingest.db.engine import Database, SchemaOutdated, database_url, open_database

__all__ = ["Database", "SchemaOutdated", "database_url", "open_database"]
