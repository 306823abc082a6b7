"""``inhouse eval beir DIR | qa FILE.csv | show RUN.json... | compare A.json B.json``.

``beir`` indexes a BEIR corpus through the ingest pipeline (once per corpus version) and
scores document-level nDCG@10, Recall@100 and MRR@10; ``qa`` scores doc@5 and figure@6 on
an already indexed collection. Both ask every question through the service's own
``Retriever.search`` and report retrieval latency. ``--json`` prints one comparable
record per run; ``show`` tabulates saved runs, ``compare`` prints the deltas of two.
Exit codes: 0 done, 2 bad input (data set, settings, unknown collection).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.cli.eval_output import EvalProgress, print_compare, print_runs
from service.cli.output import fail_usage, print_json

DEFAULT_DEPTH = 300


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="measure retrieval quality (BEIR data sets, question sets)",
        description="Measure retrieval through the service's own search code."
        " Exit 0: measured; 2: bad input (data set, settings, unknown collection).",
    )
    sub = parser.add_subparsers(dest="eval_command", metavar="KIND", required=True)

    beir = sub.add_parser(
        "beir",
        help="nDCG@10, Recall@100, MRR@10 on a BEIR data set (indexed on first use)",
        description="Index the corpus of a BEIR folder (corpus.jsonl[.gz], queries[-SPLIT].jsonl,"
        " qrels/SPLIT.tsv) into a collection named after it, reused while the corpus,"
        " encoder and chunk settings are unchanged, then score document-level rankings.",
    )
    beir.add_argument("dir", type=Path, metavar="DIR", help="BEIR data set folder")
    beir.add_argument("--split", default="test", help="qrels split (default: test)")
    beir.add_argument("--collection", default=None, help="collection (default: beir-<name>)")
    beir.add_argument(
        "--depth",
        type=int,
        default=DEFAULT_DEPTH,
        help=f"chunks retrieved per query (default {DEFAULT_DEPTH}; ~2 chunks per document)",
    )
    beir.add_argument("--limit", type=int, default=None, help="only the first N queries")
    beir.add_argument("--rebuild", action="store_true", help="re-index the corpus from scratch")
    _common(beir)
    beir.set_defaults(handler=run_beir)

    qa = sub.add_parser(
        "qa",
        help="doc@5 and figure@6 on a question CSV over an indexed collection",
        description="Questions with 'Question', 'Source Docs' (file globs) and 'Answer' columns."
        " doc@5: a source document among the sources of the top 5 chunks; figure@6: a figure"
        " of the answer (3+ significant digits, not a year) in the text of the top 6 chunks.",
    )
    qa.add_argument("file", type=Path, metavar="FILE.csv", help="question CSV")
    qa.add_argument("--collection", required=True, help="the indexed collection to search")
    _common(qa)
    qa.set_defaults(handler=run_qa)

    show = sub.add_parser("show", help="tabulate saved --json runs")
    show.add_argument("runs", nargs="+", type=Path, metavar="RUN.json")
    show.set_defaults(handler=run_show)

    compare = sub.add_parser("compare", help="metric deltas between two saved --json runs")
    compare.add_argument("before", type=Path, metavar="A.json")
    compare.add_argument("after", type=Path, metavar="B.json")
    compare.add_argument("--json", action="store_true", help="print the deltas as JSON")
    compare.set_defaults(handler=run_compare)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON record")
    parser.add_argument("--per-query", action="store_true", help="include per-query rows")


def default_collection(dataset: str) -> str:
    """``beir-<name>`` with the name reduced to collection-name characters."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", dataset.lower()).strip("-_") or "set"
    return f"beir-{slug}"[:63].rstrip("-_")


def run_beir(args: argparse.Namespace) -> int:
    from ingest.errors import IngestError
    from ingest.settings import load_settings, validate_collection_name
    from service.errors import ServiceError
    from service.evaluation.beir import score_beir
    from service.evaluation.corpus_index import CorpusIndexer
    from service.evaluation.datasets import DatasetError, load_beir
    from service.settings import ServiceSettings

    if args.depth < 1 or (args.limit is not None and args.limit < 1):
        return fail_usage("--depth and --limit must be at least 1")
    try:
        data = load_beir(args.dir, args.split)
    except DatasetError as exc:
        return fail_usage(str(exc))
    collection = args.collection or default_collection(data.name)
    try:
        validate_collection_name(collection)
    except ValueError as exc:
        return fail_usage(str(exc))
    settings = load_settings(ServiceSettings)
    indexer = CorpusIndexer(settings)
    progress = EvalProgress()
    try:
        with progress:
            state = indexer.ensure_indexed(
                data, collection, rebuild=args.rebuild, listener=progress.indexing()
            )
            source_ids = indexer.source_ids(data)
            questions = list(data.queries.items())[: args.limit]
            results, config = _search(settings, questions, [collection], args.depth, progress)
    except (IngestError, ServiceError) as exc:
        return fail_usage(f"{exc.code}: {exc.message}")
    finally:
        indexer.close()
    scored = score_beir(data, results, source_ids, per_query=args.per_query)
    index = {
        "reused": state.reused,
        "documents": state.documents,
        "chunks": state.chunks,
        "indexed": state.indexed,
        "failed": state.failed,
        "elapsed_s": round(state.elapsed_s, 1),
    }
    run = _record(scored, collection, config, index=index)
    return _emit(args, run)


def run_qa(args: argparse.Namespace) -> int:
    from ingest.errors import IngestError
    from ingest.settings import load_settings
    from service.errors import ServiceError
    from service.evaluation.datasets import DatasetError, load_qa
    from service.evaluation.qa import DEPTH, score_qa
    from service.settings import ServiceSettings

    try:
        items = load_qa(args.file)
    except DatasetError as exc:
        return fail_usage(str(exc))
    settings = load_settings(ServiceSettings)
    questions = [(str(item.line), item.question) for item in items]
    progress = EvalProgress()
    try:
        with progress:
            results, config = _search(settings, questions, [args.collection], DEPTH, progress)
    except (IngestError, ServiceError) as exc:
        return fail_usage(f"{exc.code}: {exc.message}")
    dataset = f"{args.file.resolve().parent.name}/{args.file.stem}"
    scored = score_qa(items, results, dataset=dataset, per_query=args.per_query)
    return _emit(args, _record(scored, args.collection, config))


def _search(
    settings: Any,
    questions: list[tuple[str, str]],
    collections: list[str],
    depth: int,
    progress: EvalProgress,
) -> tuple[list[Any], dict[str, Any]]:
    """Open the service's retriever, check the collections, search every question."""
    from ingest.errors import CollectionNotFound
    from service.api.deps import Resources
    from service.evaluation.runner import retrieval_config, search_all

    resources = Resources(settings)

    async def run() -> list[Any]:
        retriever = resources.retriever()
        known = await retriever.known_collections()
        for name in collections:
            if name not in known:
                raise CollectionNotFound(
                    f"unknown collection {name!r}: index it first with"
                    f" `inhouse ingest PATH --collection {name}`"
                )
        try:
            return await search_all(
                retriever, questions, collections, depth, on_done=progress.querying(len(questions))
            )
        finally:
            await resources.aclose()

    results = asyncio.run(run())
    retriever = resources.built_retriever
    assert retriever is not None
    return results, retrieval_config(settings, retriever, depth)


def _record(
    scored: dict[str, Any], collection: str, config: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """The run record: identity and metrics first, details after."""
    head: dict[str, Any] = {k: scored[k] for k in ("kind", "dataset", "split") if k in scored}
    head["collection"] = collection
    rest = {k: v for k, v in scored.items() if k not in head}
    per_query = rest.pop("per_query", None)
    run = {**head, **rest, "config": config, **extra}
    run["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    if per_query is not None:
        run["per_query"] = per_query
    return run


def _emit(args: argparse.Namespace, run: dict[str, Any]) -> int:
    if args.json:
        print_json(run)
    else:
        print_runs([run])
    return 0


def _load_run(path: Path) -> dict[str, Any]:
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable eval run: {exc}") from None
    if not isinstance(run, dict) or run.get("kind") not in ("beir", "qa"):
        raise ValueError(f"{path}: not an `inhouse eval --json` run (no kind beir/qa)")
    if not isinstance(run.get("metrics"), dict):
        raise ValueError(f"{path}: the run has no metrics")
    return run


def run_show(args: argparse.Namespace) -> int:
    try:
        runs = [_load_run(path) for path in args.runs]
    except ValueError as exc:
        return fail_usage(str(exc))
    print_runs(runs)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    try:
        before, after = _load_run(args.before), _load_run(args.after)
    except ValueError as exc:
        return fail_usage(str(exc))
    if before["kind"] != after["kind"]:
        return fail_usage(f"cannot compare a {before['kind']} run with a {after['kind']} run")
    print_compare(before, after, as_json=args.json)
    return 0
