"""``inhouse eval`` end to end on small generated data sets, and its answers to bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from service.cli import main
from tests.service.api_support import Doc, build_index

CORPUS = {
    "d1": ("Paid vacation", "New employees receive 25 days of paid vacation per year."),
    "d2": ("Payroll calendar", "Salaries are paid on the 25th of every month by bank transfer."),
    "d3": ("Cafeteria", "Lunch is served from noon; soup is on the menu every Monday."),
    "d4": ("Parking", "Staff may park in garage B; show your badge at the gate."),
    "d5": ("Travel", "Book flights through the travel desk at least two weeks ahead."),
    "d6": ("", "Security badges must be worn visibly at all times on the premises."),
}
QUERIES = {
    "q1": "How many vacation days do new employees get?",
    "q2": "When are salaries paid?",
    "q3": "Where can I park my car?",
    "q4": "Who books flights?",  # no judgments: not evaluated
}
QRELS = [("q1", "d1", 1), ("q2", "d2", 1), ("q3", "d4", 2), ("q3", "d6", 0)]


def write_beir(root: Path, corpus: dict[str, tuple[str, str]] = CORPUS, gz: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = "".join(
        json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in corpus.items()
    )
    if gz:
        (root / "corpus.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    else:
        (root / "corpus.jsonl").write_text(lines)
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in QUERIES.items())
    )
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in QRELS)
    )
    return root


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # error messages on one line


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code = main(["eval", *argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_beir_indexes_once_scores_and_reindexes_only_what_changed(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beir = write_beir(tmp_path / "toyset", gz=True)

    first = run_json(capsys, "beir", str(beir))

    assert [first[k] for k in ("kind", "dataset", "split", "collection", "queries")] == [
        "beir", "toyset", "test", "beir-toyset", 3,
    ]  # fmt: skip
    assert set(first["metrics"]) == {"ndcg@10", "recall@100", "mrr@10"}
    assert first["metrics"]["mrr@10"] == 1.0  # each question names its document's topic
    assert first["metrics"]["recall@100"] == 1.0
    assert first["latency_ms"]["p95"] >= first["latency_ms"]["p50"] > 0
    assert first["config"]["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert first["config"]["depth"] == 300 and "retrieval" in first["config"]
    assert first["index"] == {**first["index"], "reused": False, "documents": 6, "indexed": 6}
    assert "per_query" not in first
    assert (
        (data_dir / "eval" / "beir-toyset" / "docs" / "d1.md")
        .read_text()
        .startswith("# Paid vacation\n")
    )

    second = run_json(capsys, "beir", str(beir), "--per-query")
    assert second["index"]["reused"] is True and second["metrics"] == first["metrics"]
    assert [row["query_id"] for row in second["per_query"]] == ["q1", "q2", "q3"]
    assert second["per_query"][0]["top"][0] == "d1"

    changed = {**CORPUS, "d5": ("Travel", "Trains are booked by the travel desk.")}
    del changed["d3"]
    write_beir(beir, changed, gz=True)
    third = run_json(capsys, "beir", str(beir), "--collection", "toy-two", "--limit", "1")
    assert third["collection"] == "toy-two" and third["queries"] == 1
    assert third["index"]["indexed"] == 5  # a new collection: everything

    fourth = run_json(capsys, "beir", str(beir))  # the first collection, corpus changed
    assert fourth["index"]["reused"] is False
    assert fourth["index"]["indexed"] == 1 and fourth["index"]["documents"] == 5
    assert not (data_dir / "eval" / "beir-toyset" / "docs" / "d3.md").exists()


def test_beir_rebuilds_when_chunking_changes_or_the_collection_was_emptied(
    tmp_path: Path,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ingest.embed import Embedder
    from ingest.index import ChromaIndex, make_chroma_client
    from ingest.settings import IngestSettings

    beir = write_beir(tmp_path / "toyset")
    assert run_json(capsys, "beir", str(beir))["index"]["indexed"] == 6

    monkeypatch.setenv("INHOUSE_CHUNK__TOKENS", "120")
    rechunked = run_json(capsys, "beir", str(beir))
    assert rechunked["index"]["reused"] is False and rechunked["index"]["indexed"] == 6
    assert rechunked["config"]["chunk_tokens"] == 120

    index = ChromaIndex(make_chroma_client(IngestSettings(data_dir=data_dir)), Embedder().info)
    index.drop_collection("beir-toyset")
    rebuilt = run_json(capsys, "beir", str(beir))
    assert rebuilt["index"]["indexed"] == 6 and rebuilt["index"]["chunks"] >= 6
    assert rebuilt["metrics"]["recall@100"] == 1.0


def test_qa_scores_doc_at_5_and_figure_at_6(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_index(
        data_dir,
        [
            Doc("filings", "2023 Q3 ACME.pdf", "ACME 10-Q", ["Total net sales were 82,959."]),
            Doc("filings", "2023 Q3 BOLT.pdf", "BOLT 10-Q", ["Revenue grew in Europe."]),
        ],
    )
    questions = tmp_path / "qna.csv"
    questions.write_text(
        "Question,Source Docs,Question Type,Source Chunk Type,Answer\n"
        'What were ACME net sales?,*ACME*,Single-Doc,Table,"Net sales were $82,959 million'
        ' in 2023."\n'
        "Where did BOLT grow?,*BOLT*,Single-Doc,Text,In Europe.\n"
        'What did CARR earn?,*CARR*,Multi-Doc,Table,"CARR earned $12,345 million."\n'
    )

    run = run_json(capsys, "qa", str(questions), "--collection", "filings", "--per-query")

    assert run["kind"] == "qa" and run["collection"] == "filings" and run["queries"] == 3
    assert run["metrics"] == {"doc@5": pytest.approx(2 / 3, abs=1e-4), "figure@6": 0.5}
    assert run["n"] == {"doc@5": 3, "figure@6": 2}
    assert run["by_type"]["Single-Doc"] == {"doc@5": 1.0, "figure@6": 1.0, "n": 2}
    assert [row["line"] for row in run["per_query"]] == [2, 3, 4]

    code = main(["eval", "qa", str(questions), "--collection", "filings"])
    out, _ = capsys.readouterr()
    assert code == 0 and "doc@5" in out and "figure@6" in out and "0.5000" in out


def test_show_and_compare_saved_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def save(name: str, ndcg: float, p50: float) -> Path:
        run = {
            "kind": "beir", "dataset": "toy", "split": "test", "collection": "beir-toy",
            "queries": 3, "metrics": {"ndcg@10": ndcg, "recall@100": 0.9, "mrr@10": 0.5},
            "latency_ms": {"p50": p50, "p95": p50 * 2}, "config": {"retrieval": {"mode": "x"}},
        }  # fmt: skip
        path = tmp_path / name
        path.write_text(json.dumps(run))
        return path

    a, b = save("a.json", 0.6, 10.0), save("b.json", 0.65, 12.0)

    deltas = run_json(capsys, "compare", str(a), str(b))
    assert deltas["metrics"]["ndcg@10"] == {"before": 0.6, "after": 0.65, "delta": 0.05}
    assert deltas["latency_ms"]["p50"]["delta"] == 2.0
    assert "per_query" not in deltas

    rows = {"a.json": [0.5, 1.0, 0.2], "b.json": [0.7, 0.9, 0.2]}
    for path in (a, b):
        run = json.loads(path.read_text())
        run["per_query"] = [
            {"query_id": f"q{i}", "ndcg@10": v} for i, v in enumerate(rows[path.name])
        ]
        path.write_text(json.dumps(run))
    deltas = run_json(capsys, "compare", str(a), str(b))
    assert deltas["per_query"]["ndcg@10"] == {"better": 1, "worse": 1}
    assert deltas["per_query"]["recall@100"] == {"better": 0, "worse": 0}

    assert main(["eval", "show", str(a), str(b)]) == 0
    out, _ = capsys.readouterr()
    assert out.count("nDCG@10") == 2 and "0.6500" in out


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["eval", *argv])
    _, err = capsys.readouterr()
    assert code == 2, err
    return " ".join(err.split())


def test_beir_without_judgments_for_the_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beir = write_beir(tmp_path / "set")

    err = usage_error(capsys, "beir", str(beir), "--split", "dev")

    assert (
        f"expected {beir / 'qrels' / 'dev.tsv'}" in err and "(splits with judgments: test)" in err
    )


def test_beir_malformed_jsonl_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beir = write_beir(tmp_path / "set")
    corpus = beir / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + '{"_id": "d7", "text": "cut off\n')

    assert f"{corpus}:7: not valid JSON" in usage_error(capsys, "beir", str(beir))

    corpus.write_text('{"_id": "d1", "text": "fine"}\n{"title": "no id", "text": "x"}\n')
    assert f"{corpus}:2: missing or empty string field '_id'" in usage_error(
        capsys, "beir", str(beir)
    )


def test_beir_bad_qrels_line_and_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    beir = write_beir(tmp_path / "set")
    qrels = beir / "qrels" / "test.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\tyes\n")

    assert f"{qrels}:2: score 'yes' is not an integer" in usage_error(capsys, "beir", str(beir))
    assert "no such data set folder" in usage_error(capsys, "beir", str(tmp_path / "nope"))


def test_qa_missing_columns_and_unknown_collection(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Question,Answer\nWhat?,42\n")
    err = usage_error(capsys, "qa", str(bad), "--collection", "x")
    assert f"{bad}: missing column(s) Source Docs (found: Question, Answer)" in err

    good = tmp_path / "good.csv"
    good.write_text("Question,Source Docs,Answer\nWhat?,*A*,42\n")
    err = usage_error(capsys, "qa", str(good), "--collection", "nowhere")
    assert "unknown collection 'nowhere'" in err


def test_compare_refuses_runs_of_different_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, junk = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "junk.json"
    a.write_text(json.dumps({"kind": "beir", "metrics": {}}))
    b.write_text(json.dumps({"kind": "qa", "metrics": {}}))
    junk.write_text("[1, 2]")

    assert "cannot compare a beir run with a qa run" in usage_error(
        capsys, "compare", str(a), str(b)
    )
    assert "not an `inhouse eval --json` run" in usage_error(capsys, "show", str(junk))


@pytest.mark.slow
def test_beir_compares_the_encoder_the_collection_records(
    tmp_path: Path,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A collection re-embedded to the configured encoder is reused; one re-embedded away
    from it is rebuilt with it (the fingerprint alone names the encoder of the first run)."""
    from tests.ingest.reembed_support import DIMENSION, make_projected_encoder

    other = make_projected_encoder(tmp_path / "minilm-proj")
    beir = write_beir(tmp_path / "toyset")
    assert run_json(capsys, "beir", str(beir))["index"]["reused"] is False

    monkeypatch.setenv("INHOUSE_EMBED__MODEL_PATH", str(other))
    assert main(["reindex", "--reembed", "beir-toyset", "--json"]) == 0
    capsys.readouterr()
    switched = run_json(capsys, "beir", str(beir))
    assert switched["index"]["reused"] is True  # already built with the configured encoder
    assert switched["config"]["embedder_dimension"] == DIMENSION
    assert switched["metrics"]["recall@100"] == 1.0

    monkeypatch.delenv("INHOUSE_EMBED__MODEL_PATH")
    back = run_json(capsys, "beir", str(beir))
    assert back["index"]["reused"] is False and back["index"]["indexed"] == 6
    assert back["config"]["embedder_dimension"] == 384
