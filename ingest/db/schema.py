"""Every table of the shared-state database, as SQLAlchemy Core metadata.

The SQL on each table lives in one module (``ingest.manifest``: documents; ``ingest.runs``:
source_*; ``ingest.schedule``: schedule_ticks; ``service.auth.keys``: api_keys;
``service.auth.sessions``: sessions, pending_logins; ``ingest.workqueue``: queue_runs,
work_items; ``service.auth.ratelimit_db``: rate_limit_hits). Changing a table here needs an Alembic
revision in ``ingest/db/migrations/versions`` (tests compare the two).
Times are ISO-8601 UTC text where they were text before (they sort as strings), epoch
seconds (double) for sessions.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    false,
    text,
)

metadata = MetaData()

documents = Table(
    "documents",
    metadata,
    Column("id", Text, primary_key=True),
    Column("collection", Text, nullable=False),
    Column("root", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False, server_default="0"),
    Column("mtime_ns", BigInteger, nullable=False, server_default="0"),
    Column("content_hash", Text),
    Column("pending_hash", Text),
    Column("file_type", Text),
    Column("title", Text),
    Column("status", Text, nullable=False),
    Column("chunk_count", Integer, nullable=False, server_default="0"),
    Column("page_count", Integer),
    Column("error_code", Text),
    Column("error_message", Text),
    Column("embedder", Text),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("indexed_at", Text),
    Index("documents_root", "collection", "root"),
    Index("documents_status", "status"),
)

source_runs = Table(
    "source_runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("collection", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("full_scan", Boolean, nullable=False, server_default=false()),
    Column("outcome", Text, nullable=False),
    Column("started_at", Text, nullable=False),
    Column("finished_at", Text),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("files_total", Integer),
    Column("files_done", Integer, nullable=False, server_default="0"),
    Column("eta_s", Double),
    Column("progress_at", Text),
    Column("indexed", Integer, nullable=False, server_default="0"),
    Column("unchanged", Integer, nullable=False, server_default="0"),
    Column("removed", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
    Column("error", Text),
    Index("source_runs_by_source", "source", "started_at"),
)

source_run_failures = Table(
    "source_run_failures",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # keeps the files' order
    Column("run_id", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("root", Text, nullable=False),
    Column("reason", Text),
    Column("message", Text),
    Index("source_run_failures_by_run", "run_id"),
)

source_roots = Table(
    "source_roots",
    metadata,
    Column("source", Text, nullable=False),
    Column("collection", Text, nullable=False),
    Column("root", Text, nullable=False),
    Column("recorded_at", Text, nullable=False),
    PrimaryKeyConstraint("source", "collection", "root"),
)

source_schedule = Table(
    "source_schedule",
    metadata,
    Column("source", Text, primary_key=True),
    Column("next_run_at", Text),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("updated_at", Text, nullable=False),
)

schedule_ticks = Table(  # one row per (source, scheduled time): the scheduler that inserts it fires
    "schedule_ticks",
    metadata,
    Column("source", Text, nullable=False),
    Column("tick", Text, nullable=False),  # the slot's time, ISO-8601 UTC
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("fired_at", Text, nullable=False),
    PrimaryKeyConstraint("source", "tick"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("digest", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("collections", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("revoked_at", Text),
)

auth_secrets = Table(  # fingerprints of secrets kept outside the database (auth/hmac.key)
    "auth_secrets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("fingerprint", Text, nullable=False),
    Column("created_at", Text, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("ref", Text, primary_key=True),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("provider", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("email", Text),
    Column("groups", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("groups_at", Double, nullable=False),
    Column("csrf", Text, nullable=False),
    Column("id_token", Text, nullable=False),
    Column("access_token", Text, nullable=False),
    Column("refresh_token", Text, nullable=False),
    Column("ended_at", Double),
)

pending_logins = Table(
    "pending_logins",
    metadata,
    Column("state", Text, primary_key=True),
    Column("provider", Text, nullable=False),
    Column("nonce", Text, nullable=False),
    Column("verifier", Text, nullable=False),
    Column("next_url", Text, nullable=False),
    Column("created_at", Double, nullable=False),
)

# -- the durable ingest queue (``ingest.workqueue``) ----------------------------------------
queue_runs = Table(
    "queue_runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("collection", Text, nullable=False),
    Column("full_scan", Boolean, nullable=False, server_default=false()),
    Column("spec", Text, nullable=False),  # JSON: paths, include, exclude, trigger
    Column("state", Text, nullable=False),  # open, closed
    Column("unchanged", Integer, nullable=False, server_default="0"),
    Column("created_at", Double, nullable=False),
    Column("first_claim_at", Double),
    Column("closed_at", Double),
    Index(
        "queue_runs_one_open",
        "source",
        unique=True,
        postgresql_where=text("state = 'open'"),
        sqlite_where=text("state = 'open'"),
    ),
)

work_items = Table(
    "work_items",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", Text, nullable=False),
    Column("kind", Text, nullable=False),  # discover, index, remove, member, finalise
    Column("doc_id", Text),
    Column("root", Text),
    Column("path", Text),
    Column("state", Text, nullable=False),  # queued, claimed, done
    Column("owner", Text),
    Column("prev_owner", Text),
    Column("lease_until", Double),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_expiries", Integer, nullable=False, server_default="0"),
    Column("status", Text),  # indexed, unchanged, removed, failed (done items)
    Column("reason", Text),
    Column("message", Text),
    Column("chunks", Integer, nullable=False, server_default="0"),
    Column("claimed_at", Double),
    Column("done_at", Double),
    Index("work_items_claim", "state", "run_id"),
    Index("work_items_by_run", "run_id", "kind"),
)


# -- rate limits shared by API replicas (``service.auth.ratelimit_db``) --------------------
rate_limit_hits = Table(  # one row per (limit, subject, window): its hit count
    "rate_limit_hits",
    metadata,
    Column("name", Text, nullable=False),  # namespace/amount/window seconds, e.g. key/120/60
    Column("subject", Text, nullable=False),  # key id, or client address for auth failures
    Column("window_start", BigInteger, nullable=False),  # epoch s, a multiple of the window
    Column("hits", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False),  # epoch s: no longer read after this
    PrimaryKeyConstraint("name", "subject", "window_start"),
    Index("rate_limit_hits_expiry", "expires_at"),
)
