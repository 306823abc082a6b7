"""Fusion tuning: figures, not asserts (not part of ``make test``).

Each question's dense and lexical candidates are gathered once, through the retriever's
own code (``Retriever._candidates``), then every fusion setting is scored from them
offline: RRF and convex combination over a weight grid, with and without the
per-document cap. Tune on SciFact train and sec10q dev only.

Usage (the collections indexed already, e.g. by ``inhouse eval``)::

    .venv/bin/python -m tests.bench.fusion_tune beir ../shared/data/scifact \\
        --collection beir-scifact --split train
    .venv/bin/python -m tests.bench.fusion_tune qa ../shared/data/sec10q/qna-dev.csv \\
        --collection sec10q
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import gzip
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import ingest  # noqa: F401  (zero-egress environment first)

DEPTH = 100


@dataclass(frozen=True, slots=True)
class Candidates:
    dense: list[tuple[str, float]]
    lexical: list[tuple[str, float]]
    meta: dict[str, tuple[str, str]]  # chunk id -> (source, text)


def gather(
    data_dir: Path, collection: str, questions: list[str], lexical_dir: Path | None = None
) -> list[Candidates]:
    from ingest.embed import Embedder
    from ingest.index import META_SOURCE, make_chroma_client
    from ingest.lexical_text import parse_query
    from ingest.manifest import Manifest
    from ingest.settings import IngestSettings, RetrievalSettings
    from service.retrieval import Retriever

    settings = IngestSettings(data_dir=data_dir)
    embedder = Embedder(settings.embed)
    embedder.encode(["warm-up"])
    retriever = Retriever(
        make_chroma_client(settings),
        embedder,
        Manifest.open(settings),
        settings=RetrievalSettings(depth=DEPTH),
        lexical_dir=lexical_dir or data_dir / "lexical",
    )
    retriever._collection(collection)  # noqa: SLF001
    out = []
    vectors = embedder.encode(questions)
    for n, (question, vector) in enumerate(zip(questions, vectors), start=1):
        dense, lexical = retriever._candidates(  # noqa: SLF001
            collection, vector, parse_query(question), DEPTH
        )
        meta = {h.id: (str(h.metadata.get(META_SOURCE, "")), h.text) for h in dense}
        missing = [h.id for h in lexical if h.id not in meta]
        for cid, hit in retriever._fetch(collection, missing).items():  # noqa: SLF001
            meta[cid] = (str(hit.metadata.get(META_SOURCE, "")), hit.text)
        out.append(
            Candidates([(h.id, h.score) for h in dense], [(h.id, h.score) for h in lexical], meta)
        )
        if n % 50 == 0:
            print(f"  {n}/{len(questions)} questions", flush=True)
    return out


@dataclass(frozen=True, slots=True)
class Config:
    mode: str
    fusion: str = "convex"
    weight: float = 0.5
    cap: int = 3

    @property
    def label(self) -> str:
        if self.mode != "hybrid":
            return f"{self.mode:<6} cap={self.cap}"
        return f"{self.fusion:<6} w={self.weight:.2f} cap={self.cap}"


def ranked(c: Candidates, config: Config, top_k: int) -> list[tuple[str, str, str]]:
    """(chunk id, source, text), best first, as ``Retriever._search`` ranks them."""
    from service.fusion import diversify, fuse

    if config.mode == "dense" or not c.lexical:
        order = [cid for cid, _ in c.dense]
    elif config.mode == "lexical":
        order = [cid for cid, _ in c.lexical]
    else:
        scores = fuse(c.dense, c.lexical, method=config.fusion, weight=config.weight)
        order = sorted(scores, key=lambda cid: scores[cid], reverse=True)
    rows = [(cid, *c.meta[cid]) for cid in order if cid in c.meta]
    return diversify(rows, top_k, config.cap, lambda row: row[1])


def configs() -> list[Config]:
    out = [Config("dense", cap=0), Config("dense"), Config("lexical", cap=0)]
    for cap in (0, 3):
        out += [Config("hybrid", "rrf", 0.5, cap)]
        out += [Config("hybrid", "convex", w / 10, cap) for w in range(1, 10)]
    return out


# -- BEIR ----------------------------------------------------------------------------------
def _jsonl(path: Path) -> Iterable[dict[str, Any]]:
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def beir(args: argparse.Namespace) -> None:
    root = Path(args.dir)
    qfile = root / f"queries-{args.split}.jsonl"
    queries = {
        q["_id"]: q["text"] for q in _jsonl(qfile if qfile.exists() else root / "queries.jsonl")
    }
    qrels: dict[str, dict[str, int]] = {}
    with (root / "qrels" / f"{args.split}.tsv").open() as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if row and row[0] in queries and row[-1].isdigit():
                qrels.setdefault(row[0], {})[row[1]] = int(row[-1])
    if args.indexed_only:  # a collection still being indexed: questions it can answer
        indexed = _indexed_stems(Path(args.data_dir), args.collection)
        qrels = {q: r for q, r in qrels.items() if set(r) <= indexed}
    ids = sorted(qrels)[: args.limit or None]
    print(f"{len(ids)} queries; gathering candidates ...")
    cands = gather(
        Path(args.data_dir), args.collection, [queries[q] for q in ids], args.lexical_dir
    )
    print(f"\n{'setting':<26} nDCG@10  R@100  MRR@10")
    for config in configs():
        ndcg = recall = mrr = 0.0
        for qid, c in zip(ids, cands):
            docs = list(dict.fromkeys(PurePosixPath(s).stem for _, s, _ in ranked(c, config, 100)))
            ndcg += _ndcg(docs, qrels[qid], 10)
            rel = {d for d, g in qrels[qid].items() if g > 0}
            recall += len(rel & set(docs[:100])) / max(1, len(rel))
            mrr += next((1 / (i + 1) for i, d in enumerate(docs[:10]) if d in rel), 0.0)
        n = len(ids)
        print(f"{config.label:<26} {ndcg / n:.4f}  {recall / n:.4f} {mrr / n:.4f}")


def _indexed_stems(data_dir: Path, collection: str) -> set[str]:
    from ingest.index import chroma_name, make_chroma_client
    from ingest.settings import IngestSettings

    coll = make_chroma_client(IngestSettings(data_dir=data_dir)).get_collection(
        chroma_name(collection)
    )
    metas = coll.get(include=["metadatas"])["metadatas"]
    return {PurePosixPath(str(m.get("source", ""))).stem for m in metas}


def _ndcg(docs: list[str], qrel: dict[str, int], k: int) -> float:
    dcg = sum(qrel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(docs[:k]))
    ideal = sorted(qrel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


# -- QA ------------------------------------------------------------------------------------
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def key_figures(answer: str) -> list[str]:
    """Numbers with 3+ significant digits that are not years (as ``inhouse eval qa``)."""
    out = []
    for raw in _NUMBER.findall(answer):
        digits = raw.replace(",", "").replace(".", "").lstrip("0")
        plain = raw.replace(",", "")
        if len(digits) >= 3 and not re.fullmatch(r"(19|20)\d\d", plain):
            out.append(plain)
    return out


def qa(args: argparse.Namespace) -> None:
    with open(args.file, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    questions = [row["Question"] for row in rows]
    print(f"{len(questions)} questions; gathering candidates ...")
    cands = gather(Path(args.data_dir), args.collection, questions, args.lexical_dir)
    print(f"\n{'setting':<26} doc@5   figure@6")
    for config in configs():
        doc5 = fig6 = judged = 0
        for row, c in zip(rows, cands):
            top = ranked(c, replace(config), 6)
            globs = [g.strip() for g in row["Source Docs"].split(",") if g.strip()]
            doc5 += any(
                fnmatch.fnmatchcase(PurePosixPath(s).name.lower(), g.lower())
                for _, s, _ in top[:5]
                for g in globs
            )
            figures = key_figures(row["Answer"])
            if figures:
                judged += 1
                text = " ".join(t.replace(",", "") for _, _, t in top[:6])
                fig6 += any(f in text for f in figures)
        print(f"{config.label:<26} {doc5 / len(rows):.3f}   {fig6 / max(1, judged):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument(
        "--lexical-dir", type=Path, default=None, help="lexical cache (default: in the data dir)"
    )
    sub = parser.add_subparsers(dest="kind", required=True)
    b = sub.add_parser("beir")
    b.add_argument("dir")
    b.add_argument("--collection", required=True)
    b.add_argument("--split", default="train")
    b.add_argument("--limit", type=int, default=0)
    b.add_argument("--indexed-only", action="store_true", help="judge only answerable queries")
    q = sub.add_parser("qa")
    q.add_argument("file")
    q.add_argument("--collection", required=True)
    args = parser.parse_args()
    beir(args) if args.kind == "beir" else qa(args)


if __name__ == "__main__":
    main()
