"""Who is asking: the identity every request carries, and the access rules over it.

The API's one auth dependency (``service.api.deps.require_caller``) produces a
``Caller``; services receive it and never look at headers themselves.

Scopes: ``query`` (ask, chat, read sources), ``ingest`` (upload, delete, re-index),
``reasoning:read`` (reasoning log and live reasoning), ``metrics`` (``GET /metrics``),
``admin`` (keys, every collection,
every scope). A key's collections are names or ``*`` (all); an admin key reads all.

The one rule for searching, ``searchable(caller, requested, existing)``: the requested
collections (or, when none are named, every readable one), never one the key cannot read.
Naming a forbidden collection is a 403, not a silent drop, so nobody is misled about what
was searched; retrieval then queries exactly these Chroma collections and no others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from service.errors import Forbidden

SCOPE_QUERY = "query"
SCOPE_INGEST = "ingest"
SCOPE_REASONING = "reasoning:read"
SCOPE_ADMIN = "admin"
SCOPE_METRICS = "metrics"  # GET /metrics (Prometheus scrapers)
SCOPES: tuple[str, ...] = (SCOPE_QUERY, SCOPE_INGEST, SCOPE_ADMIN, SCOPE_REASONING, SCOPE_METRICS)
"""Every scope, in canonical order (key listings, error messages)."""
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
    scopes=frozenset(SCOPES),
    collections=frozenset({ALL_COLLECTIONS}),
    kind="anonymous",
)


def parse_scopes(raw: Iterable[str]) -> tuple[str, ...]:
    """Validated, de-duplicated scopes in canonical order; ``ValueError`` on unknown ones."""
    given = {s.strip() for s in raw if s.strip()}
    unknown = given - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scope(s) {sorted(unknown)}; choose from {', '.join(SCOPES)}")
    if not given:
        raise ValueError(f"give at least one scope: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in given)


def parse_collections(raw: Iterable[str]) -> tuple[str, ...]:
    """Validated collection names, or ``("*",)``; ``ValueError`` on bad names."""
    from ingest.settings import validate_collection_name

    names = sorted({c.strip() for c in raw if c.strip()})
    if ALL_COLLECTIONS in names:
        if len(names) > 1:
            raise ValueError("'*' already means every collection; give it alone")
        return (ALL_COLLECTIONS,)
    if not names:
        raise ValueError("give at least one collection, or '*' for all")
    return tuple(validate_collection_name(n) for n in names)


def make_caller(
    key_id: str, name: str, scopes: Iterable[str], collections: Iterable[str]
) -> Caller:
    """A ``Caller`` for a key; an admin key reads every collection whatever it lists."""
    scope_set = frozenset(scopes)
    coll_set = frozenset(collections)
    if SCOPE_ADMIN in scope_set:
        coll_set = frozenset({ALL_COLLECTIONS})
    return Caller(id=key_id, name=name, scopes=scope_set, collections=coll_set)


def require(caller: Caller, scope: str, collection: str | None = None) -> None:
    """Raise ``Forbidden`` unless ``caller`` holds ``scope`` (and may read ``collection``)."""
    require_any(caller, (scope,), collection)


def require_any(caller: Caller, scopes: Iterable[str], collection: str | None = None) -> None:
    """Raise ``Forbidden`` unless ``caller`` holds one of ``scopes`` (and reads ``collection``)."""
    wanted = tuple(scopes)
    if not any(caller.has_scope(s) for s in wanted):
        needed = " or ".join(f"'{s}'" for s in wanted)
        raise Forbidden(f"this key lacks the {needed} scope", scopes=list(wanted))
    if collection is not None and not caller.can_read(collection):
        raise Forbidden(f"this key may not access collection {collection!r}", collection=collection)
    if collection is not None and wanted == (SCOPE_INGEST,) and not caller.can_upload(collection):
        raise Forbidden(f"you may not upload into collection {collection!r}", collection=collection)


def searchable(
    caller: Caller, requested: Iterable[str] | None, existing: Iterable[str]
) -> list[str]:
    """Collections a search may touch: requested ∩ readable (403 on a forbidden name).

    ``requested`` None or empty means "every collection I may read" among ``existing``.
    Requested names that are readable but do not exist are kept (retrieval reports them).
    """
    wanted = list(dict.fromkeys(c for c in (requested or ()) if c))
    if not wanted:
        return sorted(set(caller.readable(existing)))
    forbidden = [c for c in wanted if not caller.can_read(c)]
    if forbidden:
        listed = ", ".join(repr(c) for c in forbidden)
        raise Forbidden(f"this key may not search collection(s) {listed}", collections=forbidden)
    return wanted
