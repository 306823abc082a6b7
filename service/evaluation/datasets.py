"""Evaluation data sets, read strictly: BEIR folders and question CSVs.

A BEIR folder holds ``corpus.jsonl`` (or ``corpus.jsonl.gz``) with ``_id``, ``title`` and
``text`` per line, ``queries-SPLIT.jsonl`` (or ``queries.jsonl``) with ``_id`` and ``text``,
and ``qrels/SPLIT.tsv`` (``query-id corpus-id score``, header optional). A question CSV
has the columns ``Question``, ``Source Docs`` (file-name globs, comma-separated) and
``Answer``; ``Question Type`` and ``Source Chunk Type`` are kept when present. Anything
malformed raises ``DatasetError`` naming the file and line.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QA_REQUIRED = ("Question", "Source Docs", "Answer")
QA_OPTIONAL = ("Question Type", "Source Chunk Type")


class DatasetError(Exception):
    """An evaluation data set is missing, incomplete or malformed (the CLI exits 2)."""


@dataclass(frozen=True, slots=True)
class CorpusDoc:
    id: str
    title: str
    text: str


@dataclass(slots=True)
class BeirSet:
    """One split of a BEIR data set, loaded."""

    name: str
    root: Path
    split: str
    corpus_path: Path
    corpus: list[CorpusDoc]
    queries: dict[str, str]  # query id -> text, for the queries judged in this split
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: grade}
    skipped: dict[str, int] = field(default_factory=dict)  # why some judgments were left out

    def corpus_fingerprint(self) -> str:
        """SHA-256 of the corpus file's bytes."""
        digest = hashlib.sha256()
        with self.corpus_path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class QAItem:
    line: int  # CSV line where the row starts
    question: str
    source_globs: tuple[str, ...]
    answer: str
    question_type: str = ""
    chunk_type: str = ""


def _first_existing(root: Path, names: list[str]) -> Path | None:
    return next((root / n for n in names if (root / n).is_file()), None)


def load_beir(root: Path, split: str) -> BeirSet:
    """Load ``split`` of the BEIR data set in ``root``; ``DatasetError`` on any problem."""
    if not root.is_dir():
        raise DatasetError(f"no such data set folder: {root}")
    corpus_path = _first_existing(root, ["corpus.jsonl", "corpus.jsonl.gz"])
    if corpus_path is None:
        raise DatasetError(f"{root}: no corpus.jsonl or corpus.jsonl.gz")
    queries_path = _first_existing(root, [f"queries-{split}.jsonl", "queries.jsonl"])
    if queries_path is None:
        raise DatasetError(f"{root}: no queries-{split}.jsonl or queries.jsonl")
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        have = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        listed = ", ".join(have) if have else "none"
        raise DatasetError(
            f"{root}: no relevance judgments for split {split!r}: expected"
            f" {qrels_path} (splits with judgments: {listed})"
        )

    corpus: list[CorpusDoc] = []
    seen: set[str] = set()
    for line_no, record in _jsonl(corpus_path):
        doc_id = _string_field(record, "_id", corpus_path, line_no)
        if doc_id in seen:
            raise DatasetError(f"{corpus_path}:{line_no}: duplicate _id {doc_id!r}")
        seen.add(doc_id)
        text = _string_field(record, "text", corpus_path, line_no, allow_empty=True)
        title = record.get("title") or ""
        if not isinstance(title, str):
            raise DatasetError(f"{corpus_path}:{line_no}: 'title' must be a string")
        corpus.append(CorpusDoc(doc_id, title.strip(), text.strip()))
    if not corpus:
        raise DatasetError(f"{corpus_path}: the corpus is empty")

    all_queries: dict[str, str] = {}
    for line_no, record in _jsonl(queries_path):
        query_id = _string_field(record, "_id", queries_path, line_no)
        all_queries[query_id] = _string_field(record, "text", queries_path, line_no)

    qrels, skipped = _read_qrels(qrels_path, all_queries, seen)
    if not qrels:
        raise DatasetError(f"{qrels_path}: no query with a relevant document to evaluate")
    return BeirSet(
        name=root.resolve().name,
        root=root,
        split=split,
        corpus_path=corpus_path,
        corpus=corpus,
        queries={qid: all_queries[qid] for qid in qrels},
        qrels=qrels,
        skipped=skipped,
    )


def _read_qrels(
    path: Path, queries: dict[str, str], corpus_ids: set[str]
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    skipped = {"unknown_query": 0, "unknown_document": 0}
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t") if "\t" in line else line.split()
            if line_no == 1 and parts[:1] == ["query-id"]:
                continue
            if len(parts) != 3:
                raise DatasetError(
                    f"{path}:{line_no}: expected 'query-id corpus-id score'"
                    f" separated by tabs, got {line.strip()[:80]!r}"
                )
            query_id, doc_id, raw_score = (p.strip() for p in parts)
            try:
                score = int(raw_score)
            except ValueError:
                raise DatasetError(
                    f"{path}:{line_no}: score {raw_score!r} is not an integer"
                ) from None
            if query_id not in queries:
                skipped["unknown_query"] += 1
                continue
            if doc_id not in corpus_ids:
                skipped["unknown_document"] += 1
                continue
            qrels.setdefault(query_id, {})[doc_id] = score
    judged = {q: grades for q, grades in qrels.items() if any(g > 0 for g in grades.values())}
    return judged, {k: v for k, v in skipped.items() if v}


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise DatasetError(f"{path}:{line_no}: expected a JSON object")
                yield line_no, record
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None


def _string_field(
    record: dict[str, Any], key: str, path: Path, line_no: int, *, allow_empty: bool = False
) -> str:
    value = record.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and key == "_id":
        value = str(value)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise DatasetError(f"{path}:{line_no}: missing or empty string field {key!r}")
    return value


def load_qa(path: Path) -> list[QAItem]:
    """Questions with source globs and reference answers; ``DatasetError`` on any problem."""
    if not path.is_file():
        raise DatasetError(f"no such question file: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in QA_REQUIRED if c not in columns]
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {', '.join(missing)}"
            f" (found: {', '.join(columns) or 'none'})"
        )
    items: list[QAItem] = []
    line_no = reader.line_num
    try:
        for row in reader:
            start, line_no = line_no + 1, reader.line_num
            cells = {
                (k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)
            }
            if not any(cells.values()):
                continue
            globs = tuple(g.strip() for g in cells.get("Source Docs", "").split(",") if g.strip())
            for column, value in (("Question", cells.get("Question")), ("Source Docs", globs)):
                if not value:
                    raise DatasetError(f"{path}:{start}: empty {column!r}")
            items.append(
                QAItem(
                    line=start,
                    question=cells["Question"],
                    source_globs=globs,
                    answer=cells.get("Answer", ""),
                    question_type=cells.get("Question Type", ""),
                    chunk_type=cells.get("Source Chunk Type", ""),
                )
            )
    except csv.Error as exc:
        raise DatasetError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
    if not items:
        raise DatasetError(f"{path}: no questions")
    return items
