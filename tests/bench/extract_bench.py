"""Extractive answers: time on top of retrieval, and how often they hold the answer's figure.

Goes through the service code path (``QueryService.prepare`` + ``stream`` with
``mode="extract"``, top_k 6) against an indexed collection, for

* ``sec10q``: the dev questions whose reference answer holds a key figure (4+ digits or a
  percentage, as in ``compare_local_answers``): does the extract state an equivalent
  figure, against the best single passage (passage [1]) and all passages together;
* ``demo``: a few hand-written questions on ``ingest/demo_docs`` with their figure.

Also times the extract (``extract_ms``: splitting + scoring, p50/p95) and, for comparison,
what embedding the question and every candidate sentence with the service's encoder would
add. Prints figures; no asserts.

    INHOUSE_DATA_DIR=/work/evaldata python -m tests.bench.extract_bench sec10q \\
        --questions /work/shared/data/sec10q/qna-dev.csv --collection sec10q
    INHOUSE_DATA_DIR=/tmp/demo python -m tests.bench.extract_bench demo --collection main
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import fnmatch
import os
import statistics
import time
from pathlib import Path
from typing import Any

import ingest  # noqa: F401  (zero-egress environment first)
from service.answer import Done, QueryInput, QueryService
from service.caller import ANONYMOUS
from service.grounding.check import FigureIndex
from service.grounding.extract import extract, units
from service.grounding.figures import Figure, find_figures
from service.settings import ServiceSettings
from tests.bench.compare_local_answers import figures as key_figures

DEMO_QUESTIONS = [
    ("How many days of paid vacation do full-time employees get?", "28 days"),
    ("How many unused vacation days can be carried over?", "5"),
    ("How many days per week may employees work remotely?", "three"),
    ("How many days a year can employees work remotely from another country?", "20"),
    ("Which extension does the IT service desk have?", "4400"),
    ("What is the nightly hotel limit in London?", "190 EUR"),
    ("What is the per diem for a full day of travel?", "45 EUR"),
    ("How long must passwords be?", "14"),
    ("After how many minutes do laptops lock?", "5 minutes"),
    ("Within how many days must expenses be submitted?", "30 days"),
]


def reference_figures(answer: str) -> list[Figure]:
    """The reference's key figures, parsed (only those ``compare_local_answers`` counts)."""
    keys = key_figures(answer)
    out = []
    for fig in find_figures(answer):
        digits = "".join(c for c in fig.text if c.isdigit() or c == ".").strip(".")
        if fig.kind not in ("date", "year") and any(digits.startswith(k) for k in keys):
            out.append(fig)
    return out


def indexed_names(collection: str) -> list[str]:
    """File names of the documents indexed in ``collection``."""
    from ingest.manifest import Manifest
    from ingest.settings import IngestSettings

    manifest = Manifest.open(IngestSettings())
    try:
        rows = manifest.execute(
            "SELECT path FROM documents WHERE collection = ? AND status = 'indexed'",
            (collection,),
        )
        return [Path(row["path"]).name for row in rows]
    finally:
        manifest.close()


def covered(row: dict[str, str], names: list[str]) -> bool:
    """Whether a document the question is about is indexed (``Source Docs`` is a glob)."""
    pattern = row["Source Docs"].strip()
    return any(
        fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(name, pattern + ".pdf") for name in names
    )


def holds(text: str, figures: list[Figure]) -> bool:
    index = FigureIndex([text])
    return any(index.supports(f) for f in figures)


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


async def measure(args: argparse.Namespace) -> None:
    from service.api.deps import Resources
    from service.reasoning_log import ReasoningLog

    settings = ServiceSettings()
    resources = Resources(settings)
    retriever = resources.retriever()
    service = QueryService(
        retriever, resources.backend(), ReasoningLog(Path(args.log_dir), 1), settings
    )
    embedder = retriever._embedder  # the service's encoder, loaded
    if args.set == "sec10q":
        questions: list[tuple[str, list[Figure]]] = []
        names = indexed_names(args.collection)
        with Path(args.questions).open(newline="") as fh:
            for row in csv.DictReader(fh):
                if not covered(row, names):
                    continue
                figs = reference_figures(row["Answer"])
                if figs:
                    questions.append((row["Question"], figs))
    else:
        questions = [(q, find_figures(a)) for q, a in DEMO_QUESTIONS]
    questions = questions[: args.n]
    counts = {"extract": 0, "first_passage": 0, "all_passages": 0}
    extract_ms: list[float] = []
    cpu_ms: list[float] = []
    retrieval_ms: list[float] = []
    embed_ms: list[float] = []
    sentences: list[int] = []
    chars = {"extract": [], "first_passage": []}  # type: dict[str, list[int]]
    for question, figs in questions:
        prepared = await service.prepare(
            QueryInput(question, collections=(args.collection,), top_k=6, mode="extract"),
            ANONYMOUS,
        )
        result: Any = None
        async for event in service.stream(prepared):
            if isinstance(event, Done):
                result = event.result
        texts = [p.text for p in prepared.passages]
        counts["extract"] += holds(result.answer, figs)
        counts["first_passage"] += holds(texts[0], figs) if texts else 0
        counts["all_passages"] += holds("\n\n".join(texts), figs)
        extract_ms.append(result.timings["extract_ms"])
        started_cpu = time.process_time()
        extract(question, prepared.passages)
        cpu_ms.append((time.process_time() - started_cpu) * 1000)
        retrieval_ms.append(prepared.retrieval_ms)
        chars["extract"].append(len(result.answer))
        chars["first_passage"].append(len(texts[0]) if texts else 0)
        cands = [u for t in texts for u in units(t)]
        sentences.append(len(cands))
        if args.embed:
            started = time.perf_counter()
            embedder.encode([question, *cands])
            embed_ms.append((time.perf_counter() - started) * 1000)
        if args.verbose:
            print(f"\nQ: {question}\n   figures: {[f.text for f in figs]}\n{result.answer}")
    n = len(questions)
    print(f"\n{args.set}: {n} questions with a reference figure on indexed documents, top_k 6")
    for name, count in counts.items():
        print(f"  holds a reference figure: {name:14s} {count}/{n} ({count / max(n, 1):.0%})")
    print(
        f"  median chars: extract {statistics.median(chars['extract']):.0f},"
        f" first passage {statistics.median(chars['first_passage']):.0f}"
    )
    print(
        f"  extract_ms p50 {statistics.median(extract_ms):.2f} p95 {p95(extract_ms):.2f}"
        f" max {max(extract_ms):.2f} (candidates per question: median"
        f" {statistics.median(sentences):.0f}, max {max(sentences)})"
    )
    print(
        f"  extract CPU ms (process time, what it costs whatever else runs): p50"
        f" {statistics.median(cpu_ms):.2f} p95 {p95(cpu_ms):.2f} (load average"
        f" {os.getloadavg()[0]:.1f})"
    )
    print(f"  retrieval_ms p50 {statistics.median(retrieval_ms):.1f} p95 {p95(retrieval_ms):.1f}")
    if embed_ms:
        print(
            f"  embedding question + candidates (torch threads {embedder.threads}):"
            f" p50 {statistics.median(embed_ms):.1f} ms p95 {p95(embed_ms):.1f} ms"
        )
    retriever.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", choices=("sec10q", "demo"))
    parser.add_argument("--questions", default="/work/shared/data/sec10q/qna-dev.csv")
    parser.add_argument("--collection", default="sec10q")
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--embed", action="store_true", help="also time sentence embeddings")
    parser.add_argument("--log-dir", default="/tmp/extract-bench-reasoning")
    parser.add_argument("-v", "--verbose", action="store_true")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
