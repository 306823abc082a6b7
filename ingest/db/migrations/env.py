"""Alembic environment: runs on the connection ``ingest.db.migrate`` hands over.

Offline (SQL script) mode is not supported: ``inhouse db upgrade`` always runs against the
database itself, under the schema lock.
"""

from __future__ import annotations

from alembic import context

from ingest.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `inhouse db upgrade` (ingest.db.migrate)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
