"""Without a real model: generated answers from the local demo model vs best passages + notice.

Runs the product path for both options on SEC 10-Q questions whose reference answer holds a
figure (a number of 4+ digits or a percentage) from one document:

* ``passages``: the retrieved top-k passages, as the ``sources`` fallback shows them;
* ``demo``: the same passages sent with the product prompt (``service.prompt``) to Gemma 3
  270M served by llama.cpp over the OpenAI protocol (``service.llm.local_model``).

Measured per question: the reference figure appears in what the user sees; the right
document is shown/cited; the answer cites valid source numbers; figures in the answer that
appear in none of the passages (invented); latency. Prints a table and a summary (figures
for the README), and writes JSON with ``--out``.

Usage (index first; the docs are the 2023 Q3 10-Q PDFs):

    INHOUSE_DATA_DIR=/tmp/bench inhouse ingest "<sec10q>/docs" --collection sec
    INHOUSE_DATA_DIR=/tmp/bench python -m tests.bench.compare_local_answers \\
        --questions <sec10q>/qna-dev.csv --collection sec -n 20
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ingest  # noqa: F401  (zero-egress environment first)
from ingest.index import META_SOURCE, META_TITLE, Hit
from service.caller import ANONYMOUS
from service.llm.base import GenerationOptions, ModelDelta, ModelDone
from service.prompt import build_messages, cited_numbers
from service.settings import ServiceSettings

FIGURE_RE = re.compile(
    r"\$?\s?\d{1,3}(?:,\d{3})+(?:\.\d+)?|\$?\s?\d{4,}(?:\.\d+)?|\d+(?:\.\d+)?\s?%"
)
YEAR_RE = re.compile(r"^(19|20)\d\d$")


def figures(text: str) -> set[str]:
    """Key figures as bare digits (``$36,413 million`` -> ``36413``, ``12.5%`` -> ``12.5``);
    years and figures of fewer than 3 digits (too common to tell anything) are left out."""
    out = set()
    for match in FIGURE_RE.findall(text):
        bare = re.sub(r"[\s$,%]", "", match)
        if not YEAR_RE.match(bare) and sum(c.isdigit() for c in bare) >= 3:
            out.add(bare)
    return out


def contains_figure(text: str, figure: str) -> bool:
    flat = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    return re.search(rf"(?<![\d.]){re.escape(figure)}(?![\d]|\.\d)", flat) is not None


@dataclass
class Question:
    text: str
    document: str  # e.g. "2023 Q3 AAPL"
    reference: str
    figures: set[str]


@dataclass
class Row:
    question: str
    document: str
    figures: list[str]
    passages_docs: list[str] = field(default_factory=list)
    passages_figure: bool = False
    passages_right_doc_top1: bool = False
    passages_right_doc_any: bool = False
    answer: str = ""
    answer_figure: bool = False
    cited: list[int] = field(default_factory=list)
    cites_right_doc: bool = False
    invented_figures: list[str] = field(default_factory=list)
    error: str | None = None
    first_token_ms: float | None = None
    wall_ms: float | None = None
    retrieval_ms: float = 0.0


def load_questions(path: Path, limit: int, documents: str = "") -> list[Question]:
    """Single-document questions with key figures, on the ``documents`` (comma-separated
    name prefixes, e.g. ``2023 Q3,2022 Q3 AAPL``; empty: all), in file order."""
    prefixes = tuple(p.strip() for p in documents.split(",") if p.strip()) or ("",)
    out = []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            doc = row["Source Docs"].strip("*")
            if not re.fullmatch(r"20\d\d Q\d [A-Z]+", doc) or not doc.startswith(prefixes):
                continue  # one indexed document per question
            found = figures(row["Answer"])
            if found:
                out.append(Question(row["Question"], doc, row["Answer"], found))
    return out[:limit]


def _doc(hit: Hit) -> str:
    return Path(str(hit.metadata.get(META_SOURCE) or hit.metadata.get(META_TITLE))).stem


async def run(args: argparse.Namespace) -> list[Row]:
    from ingest.embed import Embedder
    from ingest.index import make_chroma_client
    from ingest.manifest import Manifest
    from ingest.settings import IngestSettings
    from service.llm import local_model
    from service.retrieval import Retriever

    settings = ServiceSettings()
    ingest_settings = IngestSettings()
    embedder = Embedder(ingest_settings.embed)
    retriever = Retriever(
        make_chroma_client(ingest_settings), embedder, Manifest.open(ingest_settings)
    )
    questions = load_questions(args.questions, args.n, args.documents)
    server = None
    backend = None
    if not args.passages_only:
        gguf = local_model.ensure_gguf(local_model.models_dir(settings), print)
        demo = settings.demo_model.model_copy(update={"max_tokens": args.max_tokens})
        server = local_model.LocalModelServer(gguf, demo)
        started = time.monotonic()
        await server.start()
        print(f"demo model server up in {time.monotonic() - started:.1f}s")
        backend = server.backend(settings.timeouts)
    rows = []
    try:
        for i, q in enumerate(questions, 1):
            row = Row(q.text, q.document, sorted(q.figures))
            t0 = time.perf_counter()
            hits = await retriever.search(q.text, [args.collection], args.top_k, caller=ANONYMOUS)
            row.retrieval_ms = (time.perf_counter() - t0) * 1000
            row.passages_docs = [_doc(h) for h in hits]
            shown = "\n".join(h.text for h in hits)
            row.passages_figure = any(contains_figure(shown, f) for f in q.figures)
            row.passages_right_doc_top1 = bool(hits) and row.passages_docs[0] == q.document
            row.passages_right_doc_any = q.document in row.passages_docs
            if backend is not None:
                await _generate(backend, q, hits, row, shown)
            print(
                f"[{i:2d}] {q.document:14s} passages: fig={int(row.passages_figure)}"
                f" top1={int(row.passages_right_doc_top1)} | demo: fig={int(row.answer_figure)}"
                f" cites={row.cited} right={int(row.cites_right_doc)}"
                f" invented={len(row.invented_figures)} {row.wall_ms or 0:.0f}ms"
                f" | {row.answer[:70]!r}",
                flush=True,
            )
            rows.append(row)
    finally:
        if backend is not None:
            await backend.aclose()
        if server is not None:
            await server.stop()
    return rows


async def _generate(backend: Any, q: Question, hits: list[Hit], row: Row, shown: str) -> None:
    parts: list[str] = []
    try:
        async for item in backend.stream_chat(build_messages(q.text, hits), GenerationOptions()):
            if isinstance(item, ModelDelta) and item.kind == "answer":
                parts.append(item.text)
            elif isinstance(item, ModelDone):
                row.first_token_ms = item.timings_ms.get("first_token")
                row.wall_ms = item.timings_ms.get("wall")
    except Exception as exc:  # a benchmark records failures, it does not stop at them
        row.error = f"{type(exc).__name__}: {exc}"
    row.answer = "".join(parts).strip()
    row.answer_figure = any(contains_figure(row.answer, f) for f in q.figures)
    row.cited = cited_numbers(row.answer, len(hits))
    row.cites_right_doc = any(_doc(hits[n - 1]) == q.document for n in row.cited)
    context = shown + "\n" + q.text
    row.invented_figures = sorted(f for f in figures(row.answer) if not contains_figure(context, f))


def summarize(rows: list[Row]) -> dict[str, Any]:
    n = len(rows)

    def pct(k: int) -> str:
        return f"{k}/{n} ({100 * k / n:.0f}%)" if n else "0/0"

    walls = [r.wall_ms for r in rows if r.wall_ms]
    firsts = [r.first_token_ms for r in rows if r.first_token_ms]
    return {
        "questions": n,
        "passages: reference figure shown": pct(sum(r.passages_figure for r in rows)),
        "passages: right document first": pct(sum(r.passages_right_doc_top1 for r in rows)),
        "passages: right document among top-k": pct(sum(r.passages_right_doc_any for r in rows)),
        "demo: reference figure in answer": pct(sum(r.answer_figure for r in rows)),
        "demo: answer cites a valid [n]": pct(sum(bool(r.cited) for r in rows)),
        "demo: cites the right document": pct(sum(r.cites_right_doc for r in rows)),
        "demo: answers with invented figures": pct(sum(bool(r.invented_figures) for r in rows)),
        "demo: errors": pct(sum(r.error is not None for r in rows)),
        "demo: first token p50 ms": round(statistics.median(firsts)) if firsts else None,
        "demo: answer wall p50 ms": round(statistics.median(walls)) if walls else None,
        "retrieval p50 ms": round(statistics.median(r.retrieval_ms for r in rows)) if n else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--questions", type=Path, required=True, help="qna-dev.csv")
    parser.add_argument("--collection", default="sec")
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=6)
    parser.add_argument(
        "--documents", default="", help="comma-separated document name prefixes (the indexed ones)"
    )
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--passages-only", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = asyncio.run(run(args))
    summary = summarize(rows)
    print(json.dumps(summary, indent=2))
    if args.out:
        payload = {"summary": summary, "rows": [asdict(r) for r in rows]}
        args.out.write_text(json.dumps(payload, indent=2, default=sorted))


if __name__ == "__main__":
    main()
