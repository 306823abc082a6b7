"""Passages: a document's neighbouring chunks, when several rank, returned as one.

Chunks are cut to the encoder's window (~200 tokens), so the text that answers a question
often spans two or three of them: a note's paragraphs, or a long table cut into pieces that
each repeat its header. Ranked one by one, such chunks take several of the ``top_k``
places with one stretch of text (and its repeated overlap and header), and push out the
next passage. So the ranked candidates are grouped as they are taken:

- a candidate within ``gap`` chunk positions of a passage already taken from its
  document, or another piece of the same table (same document, same header row), joins
  that passage instead of taking a place of its own, while the passage stays within
  ``max_chunks`` chunks;
- the chunks between joined neighbours are read in, so a passage reads as continuous text:
  the overlap between consecutive chunks is said once, a table's header once;
- the per-document cap (as in ``service.fusion.diversify``) counts passages, and a passage
  keeps its best chunk's id, score and place, its pages spanning all of its chunks;
- once ``top_k`` passages are taken, later candidates join none (a passage grows only from
  candidates ranked before the results are full).

Measured on sec10q dev (same index, ``inhouse eval``): figure@6 34 -> 37 of 61 (none lost);
at most 3 chunks a passage 36 (and at 3, gap 1 gives 35). Passages per question: 4,297 ->
5,617 characters on average.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ingest.index import (
    META_DOCUMENT_ID,
    META_IS_TABLE,
    META_PAGE_END,
    META_PAGE_START,
    META_POSITION,
    Hit,
)
from service.fusion import take_groups

META_PASSAGE_CHUNKS = "passage_chunks"
"""A passage's chunk ids, in reading order (in memory only: for the audit log)."""

TABLE_CELL = " | "
OVERLAP_PROBE = 24  # characters of a chunk's start looked for in the text before it


@dataclass(slots=True)
class Group:
    """The ranked chunks one passage is made of, best first."""

    members: list[Hit] = field(default_factory=list)

    @property
    def best(self) -> Hit:
        return self.members[0]

    def positions(self) -> list[int]:
        return positions(self.members)


def positions(hits: Iterable[Hit]) -> list[int]:
    """The known chunk positions of ``hits``, in order."""
    return sorted(p for p in (position(hit) for hit in hits) if p is not None)


def position(hit: Hit) -> int | None:
    value = hit.metadata.get(META_POSITION)
    return int(value) if isinstance(value, int | float) else None


def table_header(hit: Hit) -> str | None:
    """A table piece's header row (its first line of cells, lead-in included); None for
    prose."""
    if not hit.metadata.get(META_IS_TABLE):
        return None
    return next((line for line in hit.text.splitlines() if TABLE_CELL in line), None)


def between(positions: Sequence[int], gap: int) -> list[int]:
    """The positions missing between consecutive ``positions`` (sorted) at most ``gap``
    apart: read in to make those neighbours one continuous text."""
    return [
        p for a, b in zip(positions, positions[1:]) if 1 < b - a <= gap for p in range(a + 1, b)
    ]


def group_passages(
    ranked: Sequence[Hit],
    top_k: int,
    *,
    cap: int,
    document: Callable[[Hit], str],
    uncapped: Collection[str] = (),
    gap: int = 2,
    max_chunks: int = 4,
) -> list[Group]:
    """The first ``top_k`` passages of ``ranked`` (module docstring): at most ``cap`` per
    document (0: no cap; the documents in ``uncapped`` have none) while other documents
    have candidates, then the skipped ones in order (``service.fusion.take_groups``)."""

    def joins(members: list[Hit], hit: Hit) -> bool:
        return _joins(members, hit, gap, max_chunks)

    grouping = joins if gap > 0 and max_chunks > 1 else None
    return [
        Group(members) for members in take_groups(ranked, top_k, cap, document, uncapped, grouping)
    ]


def _joins(members: list[Hit], hit: Hit, gap: int, max_chunks: int) -> bool:
    """Whether ``hit`` joins the passage of ``members`` (same document: the caller checks)."""
    spot = position(hit)
    taken = positions(members)
    if spot is None or not taken or spot in taken:
        return False
    header = table_header(hit)
    near = min(abs(spot - p) for p in taken) <= gap
    same_table = header is not None and any(table_header(m) == header for m in members)
    if not (near or same_table):
        return False
    spots = sorted([*taken, spot])
    return len(spots) + len(between(spots, gap)) <= max_chunks


def missing(groups: Iterable[Group], gap: int) -> dict[str, list[int]]:
    """Document id -> positions to read in for ``groups``."""
    out: dict[str, list[int]] = {}
    for group in groups:
        if len(group.members) > 1:
            doc = str(group.best.metadata.get(META_DOCUMENT_ID, ""))
            out.setdefault(doc, []).extend(between(group.positions(), gap))
    return {doc: spots for doc, spots in out.items() if spots}


def join_group(group: Group, read_in: Mapping[tuple[str, int], Hit]) -> Hit:
    """One passage from ``group`` and the chunks read in between its members (by
    (document id, position)); a lone chunk comes back as it is."""
    best = group.best
    if len(group.members) == 1:
        return best
    doc = str(best.metadata.get(META_DOCUMENT_ID, ""))
    spots = group.positions()
    pieces = {position(hit): hit for hit in group.members}
    for spot in range(spots[0], spots[-1] + 1):
        if spot not in pieces and (doc, spot) in read_in:
            pieces[spot] = read_in[(doc, spot)]
    ordered = [pieces[spot] for spot in sorted(p for p in pieces if p is not None)]
    text = ordered[0].text
    header = table_header(ordered[0])
    for before, piece in zip(ordered, ordered[1:]):
        text = _append(text, piece, header, position(piece) == (position(before) or 0) + 1)
    pages = [
        int(v)
        for hit in ordered
        for v in (hit.metadata.get(META_PAGE_START), hit.metadata.get(META_PAGE_END))
        if isinstance(v, int | float)
    ]
    metadata = dict(best.metadata)
    if pages:
        metadata[META_PAGE_START], metadata[META_PAGE_END] = min(pages), max(pages)
    metadata[META_POSITION] = position(ordered[0])
    metadata[META_PASSAGE_CHUNKS] = tuple(hit.id for hit in ordered)
    return replace(best, text=text, metadata=metadata)


def _append(text: str, piece: Hit, header: str | None, adjacent: bool) -> str:
    """``text`` continued by ``piece``: without the table header it repeats, without the
    overlap it shares with ``text`` when ``adjacent``; "…" marks a gap."""
    body = piece.text
    if header is not None and table_header(piece) == header:
        lines = body.splitlines()
        body = "\n".join(lines[lines.index(header) + 1 :])
    elif adjacent:
        body = _without_overlap(text, body)
    return f"{text}\n{body}" if adjacent else f"{text}\n…\n{body}"


def _without_overlap(text: str, body: str) -> str:
    """``body`` without the start it shares with the end of ``text`` (chunk overlap)."""
    probe = body[:OVERLAP_PROBE]
    start = text.find(probe, max(0, len(text) - 4 * len(body))) if probe else -1
    while start >= 0:
        tail = text[start:]
        if body.startswith(tail):
            return body[len(tail) :].lstrip()
        start = text.find(probe, start + 1)
    return body
