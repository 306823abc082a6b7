"""Access rules over ``service.caller.Caller``: scopes, collections, and what a search may touch.

Scopes: ``query`` (ask, chat, read sources), ``ingest`` (upload, delete, re-index),
``reasoning:read`` (reasoning log and live reasoning), ``metrics`` (``GET /metrics``),
``admin`` (keys, every collection, every scope). A key's collections are names or ``*``
(all); an admin key reads all.

The one rule for searching, ``searchable(caller, requested, existing)``: the requested
collections (or, when none are named, every readable one), never one the key cannot read.
Naming a forbidden collection is a 403, not a silent drop, so nobody is misled about what
was searched; retrieval then queries exactly these Chroma collections and no others.
"""

from __future__ import annotations

from collections.abc import Iterable

from service.caller import (
    ALL_COLLECTIONS,
    SCOPE_ADMIN,
    SCOPE_INGEST,
    SCOPE_METRICS,
    SCOPE_QUERY,
    SCOPE_REASONING,
    Caller,
)
from service.errors import Forbidden

SCOPES: tuple[str, ...] = (
    SCOPE_QUERY,
    SCOPE_INGEST,
    SCOPE_ADMIN,
    SCOPE_REASONING,
    SCOPE_METRICS,
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
