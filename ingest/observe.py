"""Who is watching ingestion: an optional observer for per-file results and lexical syncs.

``ingest`` never imports ``service``, yet the service's ``/metrics`` and the worker's
``--metrics-port`` count what ingestion does. The observer reaches ingest code through a
context variable, set by whoever runs the work:

* the service's metrics middleware sets it for each HTTP request (uploads, and the lexical
  syncs a query triggers, run in that request's context or a copy of it);
* ``ingest.schedule.SourceRunner(observer=...)`` sets it around each source run (scheduled
  runs execute in their own threads, where a request's context does not reach).

Nothing is recorded when no observer is set (``inhouse ingest``, tests). Observers must be
cheap and must not raise: they are called on the indexing path.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ingest.lexical import SyncResult
    from ingest.report import FileResult


class IngestObserver(Protocol):
    def file_done(self, result: FileResult) -> None:
        """One file's outcome (indexed, unchanged, removed, failed) in a pipeline run."""

    def lexical_synced(self, result: SyncResult) -> None:
        """A lexical mirror was compared with Chroma (and updated if it lagged)."""


_CURRENT: contextvars.ContextVar[IngestObserver | None] = contextvars.ContextVar(
    "inhouse_ingest_observer", default=None
)


def current() -> IngestObserver | None:
    """The observer for the work in progress, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def observing(observer: IngestObserver | None) -> Iterator[None]:
    """Make ``observer`` current for the block (None: leave the current one as it is)."""
    if observer is None:
        yield
        return
    token = _CURRENT.set(observer)
    try:
        yield
    finally:
        _CURRENT.reset(token)
