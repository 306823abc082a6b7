"""Ingestion benchmark: prints figures side by side for one folder of documents.

    .venv/bin/python -m tests.bench.ingest_bench ../shared/data/sec10q/docs [--limit 6]

Every phase runs in its own subprocess (imports and model loading included; CPU times and
resident sets of its whole process tree sampled from /proc), on the same files:
  e2e        `inhouse ingest` into a fresh data dir (parse || embed overlapped)
  e2e-pss    the same once more, sampling PSS (shared pages counted once) for the peak
             memory figure; reading smaps slows the measured processes, so no timed row
             does it
  e2e-1t     the same with the encoder on one thread (INHOUSE_EMBED__THREADS=1), leaving
             the other core to the parser process
  rerun      the same command again (everything unchanged)
  parse      the parser pool alone over the same files
  encode     SentenceTransformer.encode alone over the final chunk texts (the model's floor)
  llamaindex llama-index's default pipeline: SimpleDirectoryReader + SentenceSplitter
             defaults + HuggingFaceEmbedding(all-MiniLM-L6-v2) + Chroma
  li-200     the same with SentenceSplitter(chunk_size=200, chunk_overlap=32): all of the
             text embedded, with our overlap, as `inhouse ingest` does (the fair
             comparison: same work)
  parse-cpu  PDF parse CPU time per page in one process, pdfium text layer vs pdfminer
             (unstructured's fast strategy), and the share of pdfminer's words pdfium keeps
  small      `inhouse ingest` of SciFact's abstracts written as one .txt each (generated
             into a temporary folder from --scifact at bench time), files/s, beside the
             encoder alone over the same chunks (--small-limit N: the first N files)
Coverage = share of the parsed words that fall inside some embedding window (the encoder
reads at most 256 word-pieces per text and silently drops the rest). CPU s: user + system
seconds of every process of the phase (sampled): on a shared, loaded machine a fairer
comparison than wall time, which then depends on what else runs.
With INHOUSE_EMBED__QUANTIZE=int8 in the environment, our rows (e2e, rerun, encode, small)
use the int8 encoder; llama-index's rows stay float.
Needs the bench extra: `make bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import ingest  # noqa: F401  (zero-egress environment)

ROOT = Path(__file__).resolve().parents[2]
INHOUSE = str(Path(sys.executable).parent / "inhouse")
WINDOW = 254  # 256 minus [CLS] and [SEP]
LI_OVERLAP = 32  # tokens; our chunker's default overlap (ChunkSettings.overlap)
CPU_S = [0.0]  # CPU seconds (user + system) of the last measured process tree, all processes
SCIFACT = next(
    (
        folder / "shared" / "data" / "scifact" / "corpus.jsonl.gz"
        for folder in (ROOT.parent, ROOT.parent.parent)  # main checkout or a worktree
        if (folder / "shared").is_dir()
    ),
    Path("../shared/data/scifact/corpus.jsonl.gz"),
)


# -- measuring ---------------------------------------------------------------------------
def run_measured(
    cmd: list[str], env: dict[str, str], *, pss: bool = False
) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, peak memory of its process tree in MiB, stdout).

    The tree's CPU times and resident sets are sampled every 0.2 s from /proc/PID/stat and
    statm, which cost the measured processes nothing. With ``pss``, peak memory is PSS
    (shared pages counted once) read from smaps every 0.1 s instead: that reading holds
    each process's memory map lock and slowed `inhouse ingest` (a parent, a fork server and
    parser workers) by 11-18 s in 80 s on 6 filings, against 4.5 s in 102 s for
    llama-index's one process, so timed rows never take it (``e2e-pss`` does, apart).
    Peak memory without ``pss`` is the summed RSS (shared pages counted in every process).
    """
    import psutil

    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    cpu: dict[int, float] = {}  # per process: its last CPU reading (sampled; gone ones kept)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        parent = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                procs = [parent, *parent.children(recursive=True)]
                if pss:
                    used = sum(p.memory_full_info().pss for p in procs if p.is_running())
                else:
                    used = sum(p.memory_info().rss for p in procs if p.is_running())
                peak = max(peak, used / 2**20)
                for p in procs:
                    times = p.cpu_times()
                    cpu[p.pid] = max(cpu.get(p.pid, 0.0), times.user + times.system)
            except psutil.Error:
                pass
            time.sleep(0.1 if pss else 0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    CPU_S[0] = sum(cpu.values())
    wall = time.monotonic() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, peak, out


def word_counts(texts: list[str], tokenizer: Any, window: int | None) -> Counter[str]:
    """Words of ``texts`` as the encoder sees them, truncated to ``window`` word-pieces."""
    counts: Counter[str] = Counter()
    for text in texts:
        pieces = tokenizer.tokenize(text)
        if window is not None:
            pieces = pieces[:window]
        counts.update(tokenizer.convert_tokens_to_string(pieces).split())
    return counts


def coverage(parsed: list[str], embedded: list[str], tokenizer: Any) -> float:
    total = word_counts(parsed, tokenizer, None)
    seen = word_counts(embedded, tokenizer, WINDOW)
    covered = sum(min(n, seen[w]) for w, n in total.items())
    return covered / max(1, sum(total.values()))


def embedded_text(passage: str, meta: dict[str, Any]) -> str:
    """What the pipeline embedded: its context line (file name - section), then the passage."""
    name = str(meta["source"]).rsplit("/", 1)[-1]
    section = meta.get("section")
    context = name if not section or section == name else f"{name} - {section}"
    return f"{context}\n{passage}"


# -- phases (each runs in a subprocess: `ingest_bench --phase NAME ...`) ------------------
def phase_parse(files: list[Path], out: Path) -> None:
    from ingest.documents import ParsedDocument
    from ingest.isolation import ParserPool
    from ingest.settings import IngestSettings

    texts: list[str] = []
    pages = 0
    with ParserPool(IngestSettings().parse) as pool:
        for _, result in pool.parse_many((p, p) for p in files):
            if isinstance(result, ParsedDocument):
                texts.extend(e.text for e in result.elements if e.text.strip())
                pages += result.page_count or 0
    out.write_text(json.dumps({"texts": texts, "pages": pages}))


def phase_parse_cpu(files: list[Path], out: Path) -> None:
    """PDF parse CPU per page, pdfium vs pdfminer, in this process (workers warmed up)."""
    from ingest.parse import parse_file, warm_up
    from ingest.parser_env import keep_torch_out
    from ingest.settings import ParseSettings

    keep_torch_out()
    warm_up(everything=True)  # pdfminer's imports are not parse time
    result: dict[str, Any] = {}
    for mode in ("pdfminer", "pdfium"):
        settings = ParseSettings(pdf_text=mode)
        cpu, pages, words = 0.0, 0, Counter[str]()
        for path in files:
            if path.suffix.lower() != ".pdf":
                continue
            started = time.process_time()
            doc = parse_file(path, settings)
            cpu += time.process_time() - started
            pages += doc.page_count or 0
            for element in doc.elements:
                words.update(element.text.lower().split())
        result[mode] = {"cpu": cpu, "pages": pages, "words": dict(words)}
    out.write_text(json.dumps(result))


def write_scifact_texts(corpus: Path, target: Path, limit: int | None) -> int:
    """SciFact's abstracts as one .txt file each (title, blank line, text); returns the count."""
    import gzip

    target.mkdir(parents=True, exist_ok=True)
    count = 0
    with gzip.open(corpus, "rt", encoding="utf-8") as lines:
        for line in lines:
            if limit is not None and count >= limit:
                break
            record = json.loads(line)
            text = f"{record.get('title', '').strip()}\n\n{record.get('text', '').strip()}"
            if text.strip():
                (target / f"{record['_id']}.txt").write_text(text.strip() + "\n")
                count += 1
    return count


def stored_chunk_texts(data_dir: Path, collection: str) -> list[str]:
    """What the pipeline embedded for every chunk of ``collection`` in ``data_dir``."""
    from ingest.embed import Embedder
    from ingest.index import ChromaIndex, make_chroma_client
    from ingest.settings import IngestSettings

    settings = IngestSettings(data_dir=data_dir)
    index = ChromaIndex(make_chroma_client(settings), Embedder(settings.embed).info)
    stored = index.collection(collection).get(include=["documents", "metadatas"])
    return [
        embedded_text(text, meta) for text, meta in zip(stored["documents"], stored["metadatas"])
    ]


def phase_encode(chunks_file: Path) -> None:
    from ingest.embed import Embedder
    from ingest.settings import IngestSettings

    texts = json.loads(chunks_file.read_text())
    Embedder(IngestSettings().embed).encode(texts)  # INHOUSE_EMBED__QUANTIZE applies


def phase_llamaindex(files: list[Path], out: Path, chunk_size: int | None) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import Settings, SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.llms import MockLLM
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from ingest.embed import default_model_path

    Settings.llm = MockLLM()
    embed = HuggingFaceEmbedding(model_name=str(default_model_path()), device="cpu")
    Settings.embed_model = embed
    documents = SimpleDirectoryReader(input_files=[str(f) for f in files]).load_data()
    store_dir = tempfile.mkdtemp(prefix="li-chroma-")
    client = chromadb.PersistentClient(
        store_dir, settings=ChromaSettings(anonymized_telemetry=False)
    )
    store = ChromaVectorStore(chroma_collection=client.get_or_create_collection("bench"))
    # At chunk_size=200 the default overlap (200 tokens) would re-embed every token about
    # four times (5,149 chunks on 6 filings); ours is 32 tokens, so the fair row uses that.
    splitter = (
        SentenceSplitter(chunk_size=chunk_size, chunk_overlap=LI_OVERLAP)
        if chunk_size
        else SentenceSplitter()
    )
    nodes = splitter.get_nodes_from_documents(documents)
    VectorStoreIndex(
        nodes, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed
    )
    out.write_text(
        json.dumps(
            {
                "parsed": [d.text for d in documents],
                "embedded": [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes],
                "pages": len(documents),
            }
        )
    )
    shutil.rmtree(store_dir, ignore_errors=True)


# -- orchestration -------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="first N files only")
    parser.add_argument("--skip-llamaindex", action="store_true")
    parser.add_argument(
        "--skip-li-default", action="store_true", help="llama-index at chunk_size=200 only"
    )
    parser.add_argument("--skip-small", action="store_true", help="no small-files run")
    parser.add_argument("--skip-1t", action="store_true", help="no one-thread encoder run")
    parser.add_argument("--skip-parse-cpu", action="store_true", help="no pdfium/pdfminer row")
    parser.add_argument("--small-limit", type=int, default=None, help="first N abstracts")
    parser.add_argument("--scifact", type=Path, default=SCIFACT, help="BEIR corpus.jsonl.gz")
    parser.add_argument("--chunk-size", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--files", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        files = [Path(p) for p in json.loads(args.files.read_text())] if args.files else []
        {
            "parse": lambda: phase_parse(files, args.out),
            "encode": lambda: phase_encode(args.out),
            "llamaindex": lambda: phase_llamaindex(files, args.out, args.chunk_size),
            "parse-cpu": lambda: phase_parse_cpu(files, args.out),
        }[args.phase]()
        return

    from ingest.discover import discover

    folder = args.folder.resolve()
    files = [f.path for f in discover(folder)]
    if args.limit:
        files = files[: args.limit]
    work = Path(tempfile.mkdtemp(prefix="inhouse-bench-"))
    corpus = work / "corpus"
    corpus.mkdir()
    for path in files:  # a private copy so --limit and the llama-index run see the same files
        target = corpus / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    copied = sorted(p for p in corpus.rglob("*") if p.is_file())
    files_json = work / "files.json"
    files_json.write_text(json.dumps([str(p) for p in copied]))
    megabytes = sum(p.stat().st_size for p in copied) / 2**20
    env = dict(os.environ, INHOUSE_DATA_DIR=str(work / "data"))
    me = [sys.executable, "-m", "tests.bench.ingest_bench", str(corpus)]
    rows: dict[str, dict[str, Any]] = {}

    wall, rss, out = run_measured([INHOUSE, "ingest", str(corpus), "--json"], env)
    report = json.loads(out)
    rows["e2e"] = {"wall": wall, "rss": rss, "chunks": report["chunks_written"], "cpu": CPU_S[0]}
    wall, rss, out = run_measured([INHOUSE, "ingest", str(corpus), "--json"], env)
    rows["rerun"] = {"wall": wall, "rss": rss, "unchanged": json.loads(out)["counts"]["unchanged"]}

    if not args.skip_1t:
        env_1t = dict(env, INHOUSE_DATA_DIR=str(work / "data-1t"), INHOUSE_EMBED__THREADS="1")
        wall, rss, out = run_measured([INHOUSE, "ingest", str(corpus), "--json"], env_1t)
        rows["e2e-1t"] = {"wall": wall, "rss": rss, "chunks": json.loads(out)["chunks_written"]}

    env_pss = dict(env, INHOUSE_DATA_DIR=str(work / "data-pss"))
    wall, pss, out = run_measured([INHOUSE, "ingest", str(corpus), "--json"], env_pss, pss=True)
    e2e_pss = {"wall": wall, "pss": pss}

    parsed_file = work / "parsed.json"
    wall, rss, _ = run_measured(
        [*me, "--phase", "parse", "--files", str(files_json), "--out", str(parsed_file)], env
    )
    parsed = json.loads(parsed_file.read_text())
    rows["parse"] = {"wall": wall, "rss": rss, "cpu": CPU_S[0]}

    from ingest.embed import Embedder

    embedder = Embedder()
    chunk_texts = stored_chunk_texts(work / "data", "main")
    chunks_file = work / "chunks.json"
    chunks_file.write_text(json.dumps(chunk_texts))
    wall, rss, _ = run_measured([*me, "--phase", "encode", "--out", str(chunks_file)], env)
    rows["encode"] = {"wall": wall, "rss": rss, "cpu": CPU_S[0]}
    tokenizer = embedder.model.tokenizer
    rows["e2e"]["coverage"] = coverage(parsed["texts"], chunk_texts, tokenizer)
    pages = report["pages_indexed"] or parsed["pages"]

    if not args.skip_llamaindex:
        variants = (("llamaindex", None), ("li-200", 200))
        for name, size in variants[1:] if args.skip_li_default else variants:
            li_file = work / "li.json"
            command = [*me, "--phase", "llamaindex", "--files", str(files_json)]
            size_args = ["--chunk-size", str(size)] if size else []
            li_file.unlink(missing_ok=True)
            wall, rss, _ = run_measured([*command, *size_args, "--out", str(li_file)], env)
            if not li_file.exists():
                print(f"{name}: the llama-index phase failed (installed? `make bench`)")
                continue
            li = json.loads(li_file.read_text())
            rows[name] = {
                "wall": wall,
                "rss": rss,
                "cpu": CPU_S[0],
                "chunks": len(li["embedded"]),
                "coverage": coverage(li["parsed"], li["embedded"], tokenizer),
            }

    print_table(rows, len(copied), pages, megabytes, report)
    print(
        f"e2e peak PSS of the process tree (shared pages counted once): {e2e_pss['pss']:.0f} MB,"
        f" from a separate run sampling smaps ({e2e_pss['wall']:.1f} s: the sampling slows it)"
    )
    if not args.skip_parse_cpu:
        cpu_file = work / "parse-cpu.json"
        run_measured(
            [*me, "--phase", "parse-cpu", "--files", str(files_json), "--out", str(cpu_file)], env
        )
        print_parse_cpu(json.loads(cpu_file.read_text()))
    sys.stdout.flush()
    if not args.skip_small:
        print_small(run_small(args, work, me, env))
    shutil.rmtree(work, ignore_errors=True)


def run_small(
    args: argparse.Namespace, work: Path, me: list[str], env: dict[str, str]
) -> dict[str, Any]:
    """The small-files set: ingest, then the encoder alone over the same chunks."""
    folder = work / "scifact-txt"
    files = write_scifact_texts(args.scifact, folder, args.small_limit)
    small_env = dict(env, INHOUSE_DATA_DIR=str(work / "data-small"))
    wall, rss, out = run_measured(
        [INHOUSE, "ingest", str(folder), "--collection", "small", "--json"], small_env
    )
    cpu = CPU_S[0]
    report = json.loads(out)
    texts = stored_chunk_texts(work / "data-small", "small")
    chunks_file = work / "small-chunks.json"
    chunks_file.write_text(json.dumps(texts))
    encode_wall, _, _ = run_measured([*me, "--phase", "encode", "--out", str(chunks_file)], env)
    encode_cpu = CPU_S[0]
    return {
        "files": files,
        "wall": wall,
        "rss": rss,
        "chunks": report["chunks_written"],
        "failed": report["counts"].get("failed", 0),
        "encode_wall": encode_wall,
        "cpu": cpu,
        "encode_cpu": encode_cpu,
    }


def print_parse_cpu(result: dict[str, Any]) -> None:
    old, new = result["pdfminer"], result["pdfium"]
    if not old["pages"]:
        return
    per_old = old["cpu"] / old["pages"] * 1000
    per_new = new["cpu"] / max(1, new["pages"]) * 1000
    base, kept = Counter(old["words"]), Counter(new["words"])
    covered = sum(min(n, kept[w]) for w, n in base.items()) / max(1, sum(base.values()))
    print(
        f"PDF parse CPU per page: pdfminer {per_old:.0f} ms, pdfium {per_new:.0f} ms"
        f" ({per_old / max(per_new, 1e-9):.1f}x less); pdfminer's words kept: {covered:.2%}"
    )


def print_small(small: dict[str, Any]) -> None:
    files, wall, encode = small["files"], small["wall"], small["encode_wall"]
    print(
        f"small files: {files} .txt, {small['chunks']} chunks, {small['failed']} failed;"
        f" ingest {wall:.1f} s = {files / wall:.1f} files/s; encoder alone {encode:.1f} s ="
        f" {files / encode:.1f} files/s; peak RSS summed over the process tree"
        f" {small['rss']:.0f} MB"
    )
    print(
        f"small files CPU: ingest {small['cpu']:.0f} s, encoder alone {small['encode_cpu']:.0f} s"
        f" (ingest / encoder alone: wall {wall / encode:.2f}, CPU"
        f" {small['cpu'] / max(small['encode_cpu'], 1e-9):.2f})"
    )


def print_table(
    rows: dict[str, dict[str, Any]], files: int, pages: int, mb: float, report: dict[str, Any]
) -> None:
    print(f"files: {files}   pages: {pages}   size: {mb:.1f} MB   outcome: {report['counts']}")
    if report["failures_by_reason"]:
        print(f"failures by reason: {report['failures_by_reason']}")
    print(
        f"{'phase':<12}{'wall s':>9}{'cpu s':>8}{'pages/s':>9}{'MB/s':>8}{'chunks':>8}"
        f"{'coverage':>10}{'RSS sum MB':>13}"
    )
    for name, row in rows.items():
        wall = row["wall"]
        cov = f"{row['coverage']:.1%}" if "coverage" in row else ""
        chunks = str(row.get("chunks", ""))
        cpu = f"{row['cpu']:.0f}" if "cpu" in row else ""
        print(
            f"{name:<12}{wall:>9.1f}{cpu:>8}{pages / wall:>9.2f}{mb / wall:>8.2f}{chunks:>8}"
            f"{cov:>10}{row['rss']:>13.0f}"
        )
    e2e, parse, encode = rows["e2e"]["wall"], rows["parse"]["wall"], rows["encode"]["wall"]
    print(
        f"e2e / (parse + encode) = {e2e:.1f} / ({parse:.1f} + {encode:.1f})"
        f" = {e2e / (parse + encode):.2f}"
    )
    if "e2e-1t" in rows:
        print(f"e2e-1t / (parse + encode) = {rows['e2e-1t']['wall'] / (parse + encode):.2f}")
    print(f"unchanged re-run / first run = {rows['rerun']['wall'] / e2e:.1%}")
    if "llamaindex" in rows:
        print(f"e2e wall / llama-index default wall = {e2e / rows['llamaindex']['wall']:.2f}")
    if "li-200" in rows:
        li = rows["li-200"]
        print(f"e2e wall / llama-index chunk_size=200 wall = {e2e / li['wall']:.2f}")
        print(f"e2e CPU / llama-index chunk_size=200 CPU = {rows['e2e']['cpu'] / li['cpu']:.2f}")


if __name__ == "__main__":
    main()
