"""Word-piece counts of a text's slices from one tokenization, and the chunks made with them."""

from __future__ import annotations

import random

from ingest.chunk import Chunker
from ingest.documents import ParsedDocument, ParsedElement
from ingest.embed import Embedder
from ingest.settings import ChunkSettings
from ingest.slice_counts import SliceCounts

MIXED = (
    "Net cash provided by operating activities was $3,393 million (FY2023: 2,811). "
    "Café crème, naïve coöperation; ISO-27001 HR-2231 e-mail\u00a0address. "
    "東京 office’s «figures» — up 12.5%!\n\nUn-believable\ttokens\x1cjoined "
    "supercalifragilisticexpialidociousandmuchlongerthananywordshouldeverbeinanyreport"
    "whateverthelanguage ends here.\n"
)


def test_every_slice_at_word_boundaries_counts_as_tokenizing_it(embedder: Embedder) -> None:
    counts = SliceCounts(MIXED, embedder.word_piece_spans)
    cuts = [0, len(MIXED)] + [i for i in range(1, len(MIXED)) if not MIXED[i].isalnum()]
    rng = random.Random(7)
    answered = 0
    for _ in range(400):
        start, end = sorted(rng.sample(cuts, 2))
        piece = MIXED[start:end]
        counted = counts.count(piece)
        if counted is not None:
            answered += 1
            assert counted == embedder.count_tokens(piece), piece
    assert answered > 300


def test_slices_cut_inside_a_word_or_not_in_the_text_are_left_to_the_tokenizer(
    embedder: Embedder,
) -> None:
    counts = SliceCounts("operating activities", embedder.word_piece_spans)
    assert counts.count("operating") == embedder.count_tokens("operating")
    assert counts.count("operat") is None  # "operat" + "##ing" in the text
    assert counts.count("ing activities") is None
    assert counts.count("investing") is None
    assert counts.count("") is None
    assert SliceCounts("x y", lambda text: None).count("x") is None


def test_a_tokenizer_that_does_not_split_words_first_gives_no_spans(embedder: Embedder) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    metaspace = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    metaspace.pre_tokenizer = pre_tokenizers.Metaspace()
    other = embedder.sibling(None)
    other.tokenize("")
    other._word_pieces = metaspace
    assert other.word_piece_spans("two words") is None
    assert embedder.word_piece_spans("two words") == [(0, 3), (4, 9)]


def test_chunks_measured_from_spans_are_the_chunks_measured_one_by_one(
    embedder: Embedder,
) -> None:
    calls: list[str] = []

    def tokenize(text: str) -> list[str]:
        calls.append(text)
        return embedder.tokenize(text)

    rng = random.Random(3)
    words = MIXED.split() + ["revenue", "grew", "quarter", "segment", "Q3", "2023", "(a)"]
    paragraphs = [
        " ".join(
            " ".join(rng.choice(words) for _ in range(rng.randint(4, 30))) + "."
            for _ in range(rng.randint(1, 12))
        )
        for _ in range(40)
    ]
    elements = [ParsedElement("Results", "Title", 1)]
    elements += [ParsedElement(p, "NarrativeText", 1 + i // 5) for i, p in enumerate(paragraphs)]
    doc = ParsedDocument("docx", tuple(elements), 9)

    one_by_one = Chunker(ChunkSettings(), tokenize, embedder.max_tokens).chunk(doc, "r.docx")
    tokenized = sum(len(text) for text in calls)
    calls.clear()
    spans = Chunker(
        ChunkSettings(), tokenize, embedder.max_tokens, embedder.word_piece_spans
    ).chunk(doc, "r.docx")

    assert spans == one_by_one
    assert len(one_by_one) > 10
    assert all(embedder.count_tokens(c.text) <= embedder.max_tokens - 2 for c in spans)
    assert sum(len(text) for text in calls) < tokenized / 2
