"""Passages of neighbouring chunks: how ranked chunks group (``service.passages``) and what
``Retriever.search`` returns for them over a real Chroma (the chunks between read in)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import anyio

from ingest.index import (
    META_COLLECTION,
    META_DOCUMENT_ID,
    META_IS_TABLE,
    META_PAGE_END,
    META_PAGE_START,
    META_POSITION,
    Hit,
)
from ingest.settings import RetrievalSettings
from service.auth import audit
from service.caller import ANONYMOUS
from service.passages import META_PASSAGE_CHUNKS, between, group_passages, join_group
from tests.service.api_support import Doc, build_index, make_retriever


def chunk(doc: str, spot: int, text: str = "", *, table: bool = False) -> Hit:
    meta = {
        META_COLLECTION: "c",
        META_DOCUMENT_ID: doc,
        META_POSITION: spot,
        META_PAGE_START: spot + 1,
        META_PAGE_END: spot + 1,
        META_IS_TABLE: table,
    }
    return Hit(f"{doc}:{spot:05d}", text or f"{doc} chunk {spot}.", meta, 1.0 - spot / 100)


def doc_of(hit: Hit) -> str:
    return str(hit.metadata[META_DOCUMENT_ID])


def shapes(ranked: list[Hit], top_k: int = 3, **options: int) -> list[list[str]]:
    groups = group_passages(ranked, top_k, cap=options.pop("cap", 0), document=doc_of, **options)
    return [[hit.id for hit in group.members] for group in groups]


def test_neighbours_within_the_gap_join_and_free_a_place() -> None:
    ranked = [chunk("a", 5), chunk("b", 1), chunk("a", 7), chunk("a", 6), chunk("c", 0)]

    assert shapes(ranked) == [["a:00005", "a:00007", "a:00006"], ["b:00001"], ["c:00000"]]
    # no grouping: the first three chunks, as ranked
    assert shapes(ranked, gap=0) == [["a:00005"], ["b:00001"], ["a:00007"]]
    assert shapes(ranked, max_chunks=1) == shapes(ranked, gap=0)
    # a chunk three positions away is a passage of its own at gap 2
    assert shapes([chunk("a", 5), chunk("a", 8)], gap=2) == [["a:00005"], ["a:00008"]]


def test_a_passage_holds_at_most_max_chunks_counting_those_read_in() -> None:
    ranked = [chunk("a", 0), chunk("a", 2), chunk("a", 3), chunk("a", 4)]

    # 0 and 2 make 0-2 (1 read in); 3 makes four chunks; 4 would make five
    assert shapes(ranked, max_chunks=4) == [["a:00000", "a:00002", "a:00003"], ["a:00004"]]
    assert between([0, 2, 3], 2) == [1]
    assert between([0, 3], 2) == []


def test_pieces_of_one_table_join_however_far_apart() -> None:
    header = "Cash flows (in millions): | Q3 2023 | Q3 2022"
    piece = partial(chunk, "t", table=True)
    ranked = [
        piece(7, f"{header}\nNet income | 9,879 | 2,872"),
        chunk("u", 0),
        piece(12, f"{header}\nCapital expenditures | (12,479) | (15,634)"),
        piece(20, "Other table | 2023\nRow | 1"),
    ]

    assert shapes(ranked) == [["t:00007", "t:00012"], ["u:00000"], ["t:00020"]]


def test_the_cap_counts_passages_and_skipped_chunks_fill_the_rest() -> None:
    ranked = [chunk("a", 0), chunk("a", 1), chunk("a", 5), chunk("a", 9), chunk("b", 0)]

    assert shapes(ranked, cap=2) == [["a:00000", "a:00001"], ["a:00005"], ["b:00000"]]
    assert shapes(ranked, top_k=4, cap=2) == [
        ["a:00000", "a:00001"],
        ["a:00005"],
        ["b:00000"],
        ["a:00009"],
    ]
    assert shapes(ranked, cap=2, uncapped={"a"}) == [
        ["a:00000", "a:00001"],
        ["a:00005"],
        ["a:00009"],
    ]


def test_a_joined_passage_reads_as_one_text() -> None:
    first = chunk("a", 3, "Revenue rose in the quarter. Services grew 16% on higher demand.")
    third = chunk("a", 5, "Costs fell. Margins widened to 41.3 percent.")
    read_in = {("a", 4): chunk("a", 4, "Services grew 16% on higher demand. Products fell 2%.")}
    (group,) = group_passages([third, first], 2, cap=0, document=doc_of)

    passage = join_group(group, read_in)

    assert passage.text == (
        "Revenue rose in the quarter. Services grew 16% on higher demand.\n"
        "Products fell 2%.\n"  # the overlap with the chunk before is said once
        "Costs fell. Margins widened to 41.3 percent."
    )
    # the best chunk's id and score, the pages and the place of the whole passage
    assert (passage.id, passage.score) == (third.id, third.score)
    meta = passage.metadata
    assert (meta[META_PAGE_START], meta[META_PAGE_END], meta[META_POSITION]) == (4, 6, 3)
    assert meta[META_PASSAGE_CHUNKS] == ("a:00003", "a:00004", "a:00005")
    # a chunk gone from the index since: the gap is marked
    assert join_group(group, {}).text == f"{first.text}\n…\n{third.text}"


def test_a_joined_table_says_its_header_once() -> None:
    header = "Lead-in (in millions): | Q3 2023 | Q3 2022"
    top = chunk("t", 7, f"Cash flows\n{header}\nNet income | 9,879 | 2,872", table=True)
    low = chunk("t", 8, f"Cash flows\n{header}\nCapex | (12,479) | (15,634)", table=True)
    (group,) = group_passages([low, top], 2, cap=0, document=doc_of)

    assert join_group(group, {}).text == (
        f"Cash flows\n{header}\nNet income | 9,879 | 2,872\nCapex | (12,479) | (15,634)"
    )


FILLER = [
    f"Section {i}: the office moved its archive boxes to the new storage room." for i in range(6)
]
LEASE = Doc(
    "main",
    "contracts/lease.md",
    "Lease",
    [
        *FILLER[:3],
        "The warehouse lease renewal sets the annual rent at 412,500 euros from 2026.",
        "Maintenance of the loading docks stays with the landlord under clause 9.",
        "The renewal also lets the tenant end the warehouse lease after five years.",
        *FILLER[3:],
    ],
)


def test_search_returns_neighbouring_chunks_as_one_passage(tmp_path: Path) -> None:
    build_index(tmp_path, [LEASE])

    def search(settings: RetrievalSettings) -> list[Hit]:
        retriever = make_retriever(tmp_path, settings)
        run = partial(retriever.search, caller=ANONYMOUS)
        return anyio.run(run, "warehouse lease renewal rent and ending the lease", ["main"], 2)

    record = audit.AuditRecord("request-1", "POST", "/v1/query")
    token = audit._CURRENT.set(record)
    try:
        hits = search(RetrievalSettings(max_per_document=0))
    finally:
        audit._CURRENT.reset(token)
    best = hits[0]
    # chunks 3 and 5 rank; 4 is read in between them: one passage, in reading order
    assert best.text == "\n".join(LEASE.pages[3:6])
    chunks = best.metadata[META_PASSAGE_CHUNKS]
    assert [int(cid.split(":")[1]) for cid in chunks] == [3, 4, 5]
    assert (best.metadata[META_PAGE_START], best.metadata[META_PAGE_END]) == (4, 6)
    assert set(chunks) <= set(record.chunk_ids)  # the audit log names every chunk shown
    # dense mode (no lexical mirror to find the ids by) reads the chunks between as well
    dense = search(RetrievalSettings(max_per_document=0, mode="dense", passage_chunks=8))
    joined = [hit for hit in dense if META_PASSAGE_CHUNKS in hit.metadata]
    assert joined
    for hit in joined:
        spots = [int(cid.split(":")[1]) for cid in hit.metadata[META_PASSAGE_CHUNKS]]
        assert spots == list(range(spots[0], spots[-1] + 1)) and "…" not in hit.text
    # chunk by chunk, the same question spends both places on the lease's two sentences
    single = search(RetrievalSettings(max_per_document=0, passage_gap=0))
    assert sorted(hit.text for hit in single) == sorted([LEASE.pages[3], LEASE.pages[5]])
