"""Hybrid retrieval through ``Retriever.search``: identifiers, phrases, numbers, diversity,
bad input, and a lexical index that must be rebuilt -- real Chroma, the real encoder."""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path

import anyio
import pytest

from ingest.index import META_DOCUMENT_ID, META_SOURCE
from ingest.settings import RetrievalSettings
from service.caller import ANONYMOUS
from service.retrieval import Retriever
from tests.service.api_support import Doc, build_index, make_retriever

POLICY = (
    "Policy {code}: remote work. Employees may work from home up to three days per week"
    " with their manager's approval. Laptops and headsets are provided by the IT"
    " department, and the policy {code} is reviewed every year by the works council."
)
QUESTIONS = [
    "What does policy {code} say about remote work?",
    "{code}",
    "Is working from home allowed under {code}?",
    "who reviews {code}",
]
PREFIXES = ["HR", "FIN", "SEC", "OPS", "IT", "LEG"]


def _codes(n: int) -> list[str]:
    rng = random.Random(10)
    codes: set[str] = set()
    while len(codes) < n:
        codes.add(f"{rng.choice(PREFIXES)}-{rng.randrange(10, 9999):04d}")
    return sorted(codes)


def search(retriever: Retriever, text: str, collections: list[str], k: int = 6) -> list:
    return anyio.run(partial(retriever.search, caller=ANONYMOUS), text, collections, k)


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    path = tmp_path_factory.mktemp("policies")
    codes = _codes(40)
    docs = [
        Doc("pol", f"policies/{code}.md", "Remote work", [POLICY.format(code=code)])
        for code in codes
    ]
    build_index(path, docs)
    return path, codes


def identifier_hit_rate(retriever: Retriever, codes: list[str]) -> float:
    right = total = 0
    for code in codes:
        for question in QUESTIONS:
            hits = search(retriever, question.format(code=code), ["pol"], 3)
            right += hits[0].metadata[META_SOURCE] == f"policies/{code}.md"
            total += 1
    return right / total


def test_the_document_carrying_a_code_ranks_first(policies: tuple[Path, list[str]]) -> None:
    path, codes = policies
    rate = identifier_hit_rate(make_retriever(path), codes)
    dense = identifier_hit_rate(make_retriever(path, RetrievalSettings(mode="dense")), codes)

    assert rate >= 0.95, f"hybrid {rate:.3f} (dense alone {dense:.3f})"
    assert dense < rate


def test_compacted_and_spaced_identifiers_match(policies: tuple[Path, list[str]]) -> None:
    path, codes = policies
    retriever = make_retriever(path)
    code = codes[7]
    for form in (code.replace("-", ""), code.replace("-", " "), code.lower()):
        hits = search(retriever, f"remote work policy {form}", ["pol"], 3)
        assert hits[0].metadata[META_SOURCE] == f"policies/{code}.md", form


FACTS = Doc(
    "facts",
    "facts/notes.md",
    "Notes",
    [
        "The notice period is three months for all permanent staff.",
        "A period of three months applies before notice of the annual review is sent.",
        "Net revenue for the quarter was 94,836 thousand dollars, up from 91,200.",
        "Gross margin improved to 41.3 percent on lower freight costs.",
    ],
)


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    path = tmp_path_factory.mktemp("facts")
    build_index(path, [FACTS])
    # one chunk per result: these tests are about which chunks match (FACTS is one short
    # document, so its chunks would otherwise come back as one passage)
    return make_retriever(path, RetrievalSettings(passage_gap=0))


def test_quoted_phrase_must_match(facts: Retriever) -> None:
    hits = search(facts, 'what is the "notice period"?', ["facts"], 6)

    assert [hit.text for hit in hits] == [FACTS.pages[0]]
    unquoted = search(facts, "what is the notice period?", ["facts"], 6)
    assert len(unquoted) > 1


def test_a_phrase_nothing_contains_counts_as_words(facts: Retriever) -> None:
    hits = search(facts, '"freight margin costs"', ["facts"], 2)

    assert hits and hits[0].text == FACTS.pages[3]


@pytest.mark.parametrize("query", ["revenue 94836", "revenue of $94,836"])
def test_numbers_with_and_without_thousands_separators(facts: Retriever, query: str) -> None:
    settings = RetrievalSettings(mode="lexical")
    retriever = Retriever(facts._client, facts._embedder, facts._manifest, settings=settings)
    assert search(retriever, query, ["facts"], 1)[0].text == FACTS.pages[2]


@pytest.mark.parametrize(
    "query",
    ["", "   ", "?!?...", "x" * 4000, "remote " * 600, "Η πολιτική άδειας", "年假政策是什么", '"'],
)
def test_bad_input_still_answers(facts: Retriever, query: str) -> None:
    hits = search(facts, query, ["facts"], 3)

    assert len(hits) == 3


def test_one_document_does_not_fill_the_results(tmp_path: Path) -> None:
    big = Doc(
        "div",
        "expenses/manual.md",
        "Expense manual",
        [
            f"Expense claims, part {i}: receipts for travel expenses are filed monthly."
            for i in range(8)
        ],
    )
    others = [
        Doc(
            "div",
            f"expenses/note{i}.md",
            "Note",
            [f"Travel expense receipts note {i}: file them monthly."],
        )
        for i in range(3)
    ]
    build_index(tmp_path, [big, *others])

    hits = search(make_retriever(tmp_path), "how are travel expense receipts filed?", ["div"], 6)
    per_doc: dict[str, int] = {}
    for hit in hits:
        per_doc[hit.metadata[META_DOCUMENT_ID]] = per_doc.get(hit.metadata[META_DOCUMENT_ID], 0) + 1
    assert len(hits) == 6 and max(per_doc.values()) == 3 and len(per_doc) == 4

    alone = search(make_retriever(tmp_path), "expense claims part", ["div"], 6)
    assert len(alone) == 6  # with fewer other candidates the cap gives way, never empties


def test_a_broken_lexical_index_is_rebuilt_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build_index(tmp_path, [FACTS])
    retriever = make_retriever(tmp_path)
    assert search(retriever, "notice period", ["facts"], 1)[0].text == FACTS.pages[0]
    for path in (tmp_path / "lexical").rglob("*"):
        if path.is_file() and path.suffix != ".lock":
            path.write_bytes(b"\x00broken")

    again = make_retriever(tmp_path)  # a restarted service
    hits = search(again, '"notice period"', ["facts"], 1)

    assert hits[0].text == FACTS.pages[0]
    assert any("rebuilding it from Chroma" in r.message for r in caplog.records)


def test_the_document_a_question_names_lifts_its_passages(tmp_path: Path) -> None:
    """The answer row names neither company nor quarter; its document does, elsewhere."""
    companies = ["Zentrix", "Quorvane", "Halbrook"]
    docs = []
    for name in companies:
        row = (
            "Net cash provided by operating activities | 3,393 | 6,075"
            if name == "Zentrix"  # the other filings' rows match the question's words better
            else "Operating cash flow: net cash provided by operating activities was 1,200."
        )
        pages = [
            f"{name} Corporation quarterly report for the period.",
            f"{name} designs and sells widgets; {name} employs engineers in three countries.",
            row,
        ]
        docs.append(Doc("fil", f"filings/{name.lower()}.md", "Quarterly report", pages))
    build_index(tmp_path, docs)
    question = "What was Zentrix's operating cash flow?"

    def first_row(settings: RetrievalSettings | None) -> str:
        hits = search(make_retriever(tmp_path, settings), question, ["fil"])
        return next(h.text for h in hits if "operating activities" in h.text)

    assert "3,393" not in first_row(RetrievalSettings(document_prior=0))
    assert "3,393" in first_row(None)  # the default prior: Zentrix's own row first


def test_a_question_for_the_latest_report_gets_the_newest_one(tmp_path: Path) -> None:
    """Three quarterly reports of one company match a question's words alike; the
    newest by the date its opening states answers "latest", whatever the file order."""
    periods = [("2023-q1", "April 1, 2023", "4,100"), ("2023-q3", "September 30, 2023", "7,300"),
               ("2023-q2", "July 1, 2023", "5,200")]  # fmt: skip
    docs = [
        Doc(
            "qr",
            f"reports/{stem}.md",
            "Quarterly report",
            [
                f"Zentrix Corporation quarterly report for the period ended {ended}.",
                "Zentrix designs and sells widgets and employs engineers in three countries.",
                f"Zentrix net revenue was {revenue}.",
            ],
        )
        for stem, ended, revenue in periods
    ]
    build_index(tmp_path, docs)

    def first_revenue(question: str, settings: RetrievalSettings | None = None) -> str:
        hits = search(make_retriever(tmp_path, settings), question, ["qr"])
        return next(h.text for h in hits if "revenue" in h.text)

    latest = "What was Zentrix's net revenue in the latest quarterly report?"
    assert "7,300" not in first_revenue(latest, RetrievalSettings(latest_boost=0))
    assert "7,300" in first_revenue(latest)
    assert "7,300" in first_revenue(latest.replace("latest", "most recent"))
    assert "7,300" not in first_revenue(latest.replace("latest ", ""))  # no boost without it


def test_the_document_a_question_names_may_fill_the_results(tmp_path: Path) -> None:
    """Three filings alike but for their company; a question naming one company gets all
    six passages from its filing, one that names none keeps the per-document cap."""
    companies = ["Zentrix", "Quorvane", "Halbrook"]
    docs = [
        Doc(
            "fil",
            f"filings/{name.lower()}.md",
            "Quarterly report",
            [f"{name} Corporation quarterly report for the period ended July 1, 2023."]
            + [f"Segment {i}: revenue from widgets grew and margins held." for i in range(8)],
        )
        for name in companies
    ]
    build_index(tmp_path, docs)

    def per_document(question: str, ratio: float = 1.25) -> list[int]:
        # chunk by chunk (no passages of neighbours): the cap is what is counted here
        settings = RetrievalSettings(named_document_ratio=ratio, passage_gap=0)
        hits = search(make_retriever(tmp_path, settings), question, ["fil"])
        counts: dict[str, int] = {}
        for hit in hits:
            counts[hit.metadata[META_SOURCE]] = counts.get(hit.metadata[META_SOURCE], 0) + 1
        return sorted(counts.values(), reverse=True)

    named = "How did segment revenue from widgets grow in Quorvane's quarterly report?"
    assert per_document(named) == [6]
    assert max(per_document(named, ratio=0)) == 3
    assert max(per_document("How did segment revenue from widgets grow?")) <= 3


def test_a_document_whose_opening_matches_more_of_the_question_is_named(
    tmp_path: Path,
) -> None:
    """Zentrix's Q3 2023 report scores under 1.25 times its Q3 2022 and Q2 2023 reports
    ("Q3" and "2023" open most reports here), but its opening holds both words where theirs
    hold one: it is named and fills the results. A question that no opening tells apart
    keeps the per-document cap."""
    reports = [
        ("Zentrix", "September 30, 2023", "Q3 2023"),
        ("Zentrix", "September 30, 2022", "Q3 2022"),
        ("Zentrix", "June 30, 2023", "Q2 2023"),
        ("Quorvane", "September 30, 2023", "Q3 2023"),
        ("Halbrook", "September 30, 2023", "Q3 2023"),
    ]
    docs = [
        Doc(
            "qr",
            f"reports/{name}-{quarter.replace(' ', '-')}.md".lower(),
            "Quarterly report",
            [f"{name} Corporation quarterly report for the quarter ended {ended} ({quarter})."]
            + [f"Segment {i}: revenue from widgets grew and margins held." for i in range(8)],
        )
        for name, ended, quarter in reports
    ]
    build_index(tmp_path, docs)

    def sources(question: str) -> list[str]:
        # chunk by chunk (no passages of neighbours): the cap is what is counted here
        hits = search(make_retriever(tmp_path, RetrievalSettings(passage_gap=0)), question, ["qr"])
        return [hit.metadata[META_SOURCE] for hit in hits]

    named = sources("How did widget revenue grow in Zentrix's Q3 2023 report?")
    assert named == ["reports/zentrix-q3-2023.md"] * 6
    alike = sources("How did widget revenue grow in Zentrix's reports?")
    assert max(alike.count(source) for source in alike) <= 3


def _filing(name: str, quarter: str, cash: str) -> list[str]:
    """A long quarterly filing: cover, business review, the cash-flow statement, more
    review, and a certification that repeats the words naming the filing."""
    topics = ["widgets", "services", "licences", "support", "hardware", "training"]
    review = [
        f"Segment review {i}: revenue from {topic} grew in every region; customers renewed"
        f" contracts for {topic}, pricing held, and the backlog of {topic} orders rose while"
        f" the team hired engineers and opened a new office for {topic} customers."
        for i, topic in enumerate(topics * 2)
    ]
    return [
        f"{name} Corporation quarterly report on Form 10-Q for the quarter ended"
        f" {ENDED[quarter]} ({quarter} 2023).",
        *review[:6],
        "STATEMENTS OF CASH FLOWS (In millions) | Nine Months Ended | Prior Year\n"
        "Cash flows from operating activities: Net income | 2,021 | 1,540\n"
        "Cash flows from operating activities: Depreciation | 410 | 388\n"
        f"Net cash provided by operating activities | {cash} | 1,075\n"
        "Cash flows from investing activities: Purchases of equipment | (1,324) | (703)",
        *review[6:],
        f"I certify that this quarterly report on Form 10-Q of {name} Corporation for"
        f" {quarter} 2023 fully complies with the Securities Exchange Act. {name}"
        f" Corporation, {quarter} 2023.",
    ]


ENDED = {"Q2": "June 30, 2023", "Q3": "September 30, 2023"}


def test_inside_the_named_document_its_subject_ranks_passages(tmp_path: Path) -> None:
    """In a long filing the cover and the certification repeat the words that name it
    (company, quarter); the cash-flow statement holds the answer and neither. Inside the
    named filing the naming words weigh little and the question is embedded without them."""
    filings = [("Zentrix", "Q3", "3,393"), ("Zentrix", "Q2", "2,480"),
               ("Quorvane", "Q3", "2,117"), ("Halbrook", "Q2", "5,840")]  # fmt: skip
    docs = [
        Doc(
            "fil",
            f"filings/{name.lower()}-{quarter.lower()}.md",
            f"{name} Form 10-Q",
            _filing(name, quarter, cash),
        )
        for name, quarter, cash in filings
    ]
    build_index(tmp_path, docs)
    question = "What was Zentrix's operating cash flow as revealed in the Q3 2023 10-Q?"

    def first(settings: RetrievalSettings | None = None) -> str:
        hits = search(make_retriever(tmp_path, settings), question, ["fil"])
        assert hits[0].metadata[META_SOURCE] == "filings/zentrix-q3.md"
        return hits[0].text

    plain = first(RetrievalSettings(naming_weight=1))
    assert "Zentrix Corporation" in plain and "3,393" not in plain  # cover or certification
    assert "3,393" in first()
