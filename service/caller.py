"""Who is asking: the identity every request carries, and what it may read.

The API's one auth dependency (``service.api.deps.require_caller``) produces a
``Caller``; services receive it and never look at headers themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SCOPE_QUERY = "query"
SCOPE_INGEST = "ingest"
SCOPE_REASONING = "reasoning:read"
SCOPE_ADMIN = "admin"
SCOPE_METRICS = "metrics"  # GET /metrics (Prometheus scrapers)
ALL_SCOPES = frozenset({SCOPE_QUERY, SCOPE_INGEST, SCOPE_REASONING, SCOPE_ADMIN, SCOPE_METRICS})
ALL_COLLECTIONS = "*"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated (or, until access control exists, anonymous) caller."""

    id: str
    name: str
    scopes: frozenset[str]
    collections: frozenset[str]  # collection names, or ``{"*"}`` for every collection
    # Sessions (company sign-in) only: where uploads may go (None: every readable
    # collection, given the ingest scope, as for keys) and the kind of credential.
    uploads: frozenset[str] | None = None
    kind: str = "key"  # "key" | "session" | "anonymous"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or SCOPE_ADMIN in self.scopes

    def can_read(self, collection: str) -> bool:
        return ALL_COLLECTIONS in self.collections or collection in self.collections

    def can_upload(self, collection: str) -> bool:
        """Whether uploads (and re-indexing) into ``collection`` are allowed."""
        if not self.has_scope(SCOPE_INGEST) or not self.can_read(collection):
            return False
        if self.uploads is None or SCOPE_ADMIN in self.scopes:
            return True
        return ALL_COLLECTIONS in self.uploads or collection in self.uploads

    def readable(self, collections: Iterable[str]) -> list[str]:
        """The given collections this caller may read, in their order."""
        return [name for name in collections if self.can_read(name)]

    @property
    def may_read_reasoning(self) -> bool:
        return self.has_scope(SCOPE_REASONING)


ANONYMOUS = Caller(
    id="anonymous",
    name="anonymous",
    scopes=ALL_SCOPES,
    collections=frozenset({ALL_COLLECTIONS}),
    kind="anonymous",
)
