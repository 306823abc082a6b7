"""The grounding check on the demo model's own answers (issue 11 §2): flag and false-flag rates.

``generate``: the service (``create_app``, uvicorn on loopback, no Ollama, the demo model
Gemma 3 270M always) answers sec10q dev questions through ``POST /v1/query`` with
``fallback: "none"``; each response is saved with the full text of its retrieved passages
(read back from Chroma by chunk id: the API's snippets are cut at 1,200 characters). Written
after every answer, so a long run can be scored while it goes on.

``score``: every figure of every answer is labelled by :mod:`tests.bench.figure_labels` (plain
digit matching, written apart from the check's matcher so the measurement is not circular),
then ``check_answer`` is run again on the saved answer and its passages (so a changed check
is re-scored without regenerating). Flag rate on invented figures, false-flag rate on
supported ones.

    cp -a /work/evaldata-sec10q-v2 /tmp/measure-sec10q   # the service may write: a copy
    INHOUSE_DATA_DIR=/tmp/measure-sec10q python -m tests.bench.demo_grounding generate \\
        --per-type 7 --top-k 3 --max-tokens 100 --out /tmp/measure/answers.json
    python -m tests.bench.demo_grounding score /tmp/measure/answers.json \\
        --out /tmp/measure/scores.json -v

A run is slow on 2 shared cores (1.5-7 min per answer): ``--start N`` skips the first N
questions, so a second process can take the other half; ``score`` takes several files.
Measured 2026-12-01 (21 questions, 7 per type): 16/16 invented figures flagged, 2/48
supported ones flagged; figures cut at max_tokens (5) and page/note references (22) apart.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import ingest  # noqa: F401  (zero-egress environment first)
from service.grounding import check_answer
from tests.bench.figure_labels import Label, label_answer


def pick_questions(path: Path, per_type: int) -> list[dict[str, str]]:
    """The first ``per_type`` questions of each question type, in file order."""
    taken: Counter[str] = Counter()
    out = []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            kind = row["Question Type"]
            if taken[kind] < per_type:
                taken[kind] += 1
                out.append(row)
    return out


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _full_texts(data_dir: Path, collection: str, ids: list[str]) -> dict[str, str]:
    from ingest.index import chroma_name, make_chroma_client
    from ingest.settings import IngestSettings

    client = make_chroma_client(IngestSettings(data_dir=data_dir))
    got = client.get_collection(chroma_name(collection)).get(ids=ids, include=["documents"])
    return dict(zip(got["ids"], got["documents"], strict=True))


def generate(args: argparse.Namespace) -> None:
    import httpx

    from service.api.main import create_app
    from service.settings import ServiceSettings
    from tests.service.api_support import LiveService

    data_dir = Path(os.environ["INHOUSE_DATA_DIR"])
    settings = ServiceSettings(
        data_dir=data_dir,
        ollama_host=f"127.0.0.1:{_dead_port()}",
        auth="disabled",
        demo_model={"use": "always", "max_tokens": args.max_tokens, "threads": args.threads},
        timeouts={"first_token_s": 1800, "total_s": 3600},  # 2 shared cores: slow, not dead
        reasoning_log={"dir": Path(args.out).parent / "reasoning"},
    )
    questions = pick_questions(Path(args.questions), args.per_type)[args.start :]
    out = Path(args.out)
    records: list[dict[str, Any]] = []
    if args.resume and out.exists():  # keep the model's answers, ask the rest again
        kept = json.loads(out.read_text())["records"]
        records = [r for r in kept if r["status"] == 200]
    done = {r["question"] for r in records}
    config = {
        "model": "gemma3-270m Q4_K_M (llama.cpp, chat_format alpaca)",
        "max_tokens": args.max_tokens,
        "threads": args.threads,
        "top_k": args.top_k,
        "collection": args.collection,
        "fallback": "none",
        "questions": f"first {args.per_type} of each type in {args.questions}",
    }
    with LiveService(create_app(settings)) as live:
        for i, row in enumerate(questions, 1):
            if row["Question"] in done:
                continue
            started = time.monotonic()
            body = {
                "question": row["Question"],
                "collections": [args.collection],
                "top_k": args.top_k,
                "fallback": "none",
            }
            response = httpx.post(f"{live.url}/v1/query", json=body, timeout=900)
            data = response.json()
            record: dict[str, Any] = {
                "question": row["Question"],
                "type": row["Question Type"],
                "reference": row["Answer"],
                "status": response.status_code,
                "seconds": round(time.monotonic() - started, 1),
                "response": data,
            }
            citations = data.get("citations") or []
            if citations:
                full = _full_texts(data_dir, args.collection, [c["chunk_id"] for c in citations])
                record["passages"] = {str(c["n"]): full[c["chunk_id"]] for c in citations}
            records.append(record)
            out.write_text(json.dumps({"config": config, "records": records}, indent=1))
            answer = str(data.get("answer", data.get("error")))
            print(f"[{i:2d}] {record['seconds']:6.1f}s {answer[:90]!r}", flush=True)


def _heading(citation: dict[str, Any]) -> str:
    """The heading the prompt showed for a passage (``service.prompt.source_label``), no [n]."""
    page, end = citation.get("page"), citation.get("page_end")
    pages = "" if page is None else f", p. {page}" if end in (None, page) else f", pp. {page}-{end}"
    return f"{citation['title']}{pages}"


def _flagged(label: Label, spans: list[tuple[int, int]]) -> bool:
    return any(start < label.end and label.start < end for start, end in spans)


def score(args: argparse.Namespace) -> None:
    payloads = [json.loads(Path(path).read_text()) for path in args.answers]
    payload = {"config": payloads[0]["config"], "records": []}
    for part in payloads:  # runs split over processes, same settings
        payload["records"] += [r for r in part["records"] if r not in payload["records"]]
    rows: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    max_tokens = int(payload["config"]["max_tokens"])
    for record in payload["records"]:
        response = record["response"]
        if record["status"] != 200 or response.get("mode") != "model":
            counts["answers not from the model"] += 1
            continue
        answer = response["answer"]
        passages = {int(n): text for n, text in record.get("passages", {}).items()}
        titles = {c["n"]: c["title"] for c in response.get("citations", [])}
        # as the service checks (service.answer): each passage under its document's title
        shown = {n: f"{titles.get(n, '')}\n{text}" for n, text in passages.items()}
        result = check_answer(answer, shown, record["question"])
        spans = [u.span for u in result.unsupported if u.kind == "figure"]
        headings = {c["n"]: _heading(c) for c in response.get("citations", [])}
        labels = label_answer(answer, passages, record["question"], headings)
        counts["answers"] += 1
        capped = (response.get("usage") or {}).get("completion_tokens", 0) >= max_tokens
        for label in labels:
            flagged = _flagged(label, spans)
            # the last figures of an answer cut at max_tokens may be cut too ("22,23" for
            # 22,234, "July 1, 202"): counted apart, left out of the rates
            rest = answer[label.end :].rstrip()
            cut = capped and len(rest) <= 6 and not rest.strip(" \n,.0123456789")
            kind = f"{label.label} (cut at max_tokens)" if cut else label.label
            counts[kind] += 1
            counts[f"{kind} flagged"] += flagged
            rows.append(
                {
                    "question": record["question"][:80],
                    "figure": label.text,
                    "span": [label.start, label.end],
                    "label": label.label,
                    "why": label.why,
                    "flagged": flagged,
                    "cut": cut,
                    "context": answer[max(0, label.start - 40) : label.end + 40],
                }
            )
        counts["answers with invented figures"] += any(x.label == "invented" for x in labels)
        counts["answers citing a valid [n]"] += bool(response.get("cited"))
        if result.unsupported and not any(
            _flagged(x, [u.span]) for x in labels for u in result.unsupported
        ):
            counts["flags on no labelled figure"] += 1
    supported = counts["supported"]
    invented = counts["invented"]
    summary = {
        "config": payload["config"],
        "counts": dict(counts),
        "figures": len(rows),
        "invented flagged": f"{counts['invented flagged']}/{invented}"
        f" ({counts['invented flagged'] / max(invented, 1):.1%})",
        "supported wrongly flagged": f"{counts['supported flagged']}/{supported}"
        f" ({counts['supported flagged'] / max(supported, 1):.1%})",
        "uncited flagged": f"{counts['uncited flagged']}/{counts['uncited']}",
        "page references flagged": f"{counts['reference flagged']}/{counts['reference']}",
    }
    print(json.dumps(summary, indent=1))
    if args.verbose:
        for row in rows:
            if row["label"] in ("supported", "invented") and row["flagged"] != (
                row["label"] == "invented"
            ):
                print(
                    f"  {row['label']:9s} cut={row['cut']!s:5s} flagged={row['flagged']!s:5s}"
                    f" {row['figure']!r}"
                    f" ({row['why']}) in ...{row['context']!r}"
                )
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "figures": rows}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--questions", default="/work/shared/data/sec10q/qna-dev.csv")
    gen.add_argument("--collection", default="sec10q")
    gen.add_argument("--per-type", type=int, default=10)
    gen.add_argument("--top-k", type=int, default=6)
    gen.add_argument("--max-tokens", type=int, default=200)
    gen.add_argument("--threads", type=int, default=2)
    gen.add_argument("--out", default="/tmp/measure/answers.json")
    gen.add_argument("--start", type=int, default=0, help="skip the first N picked questions")
    gen.add_argument("--resume", action="store_true", help="keep the answers already in --out")
    sc = sub.add_parser("score")
    sc.add_argument("answers", nargs="+")
    sc.add_argument("--out", default=None)
    sc.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    generate(args) if args.what == "generate" else score(args)


if __name__ == "__main__":
    main()
