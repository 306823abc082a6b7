"""The grounding check: flag rates on a labelled set built from sec10q, and its speed.

Labelled set (``rates``): for each dev question, the top-6 passages are retrieved through
the service (``QueryService.prepare``). Each key figure of the reference answer (4+ digits
or a percentage, ``compare_local_answers.figures``) whose digits appear in a passage is a
*correct* figure: the reference answer, citing the passages that hold its figures, should
not have it flagged. Each such figure is then replaced by an *invented* one (the value
scaled by a random factor in 0.5..1.5 outside 0.97..1.03, or one digit changed, in the same
format) whose digits appear in no passage: it should be flagged. Prints both shares.

Speed (``speed``): answers of 5k/10k/20k/40k characters dense with figures and quotes
(one every ~27 characters) against six passages: CPU time (what the check costs, whatever
else runs) and wall time, and the time per character (linear?).

    INHOUSE_DATA_DIR=/work/evaldata python -m tests.bench.grounding_bench rates
    python -m tests.bench.grounding_bench speed
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import re
import statistics
import time
from pathlib import Path

import ingest  # noqa: F401  (zero-egress environment first)
from service.answer import QueryService
from service.answer_types import QueryInput
from service.caller import ANONYMOUS
from service.grounding import check_answer
from service.grounding.figures import find_figures
from service.settings import ServiceSettings
from tests.bench.compare_local_answers import contains_figure
from tests.bench.compare_local_answers import figures as key_figures
from tests.bench.extract_bench import covered, indexed_names


def bare(text: str) -> str:
    return re.sub(r"[^\d.]", "", text).strip(".")


def perturb(text: str, rng: random.Random, style: str) -> str:
    """``text`` (a figure as written) with another value in the same format."""
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    chars = list(text)
    if style == "digit":  # change one digit among the first three significant ones
        i = digits[min(len(digits) - 1, rng.randrange(1, 3) if len(digits) > 2 else 0)]
        chars[i] = rng.choice([d for d in "0123456789" if d != chars[i]])
        return "".join(chars)
    factor = rng.choice([rng.uniform(0.5, 0.97), rng.uniform(1.03, 1.5)])
    number = re.search(r"\d[\d,]*(?:\.\d+)?", text)
    assert number is not None
    raw = number.group()
    decimals = len(raw.split(".")[1]) if "." in raw else 0
    value = float(raw.replace(",", "")) * factor
    formatted = f"{value:,.{decimals}f}" if "," in raw else f"{value:.{decimals}f}"
    return text[: number.start()] + formatted + text[number.end() :]


async def rates(args: argparse.Namespace) -> None:
    from service.api.deps import Resources
    from service.reasoning_log import ReasoningLog

    settings = ServiceSettings()
    resources = Resources(settings)
    retriever = resources.retriever()
    service = QueryService(
        retriever, resources.backend(), ReasoningLog(Path(args.log_dir), 1), settings
    )
    rng = random.Random(args.seed)
    correct = flagged_correct = 0
    invented = {"scale": [0, 0], "digit": [0, 0]}  # style -> [flagged, total]
    missed: list[str] = []
    wrongly: list[str] = []
    names = indexed_names(args.collection)
    with Path(args.questions).open(newline="") as fh:
        rows = [row for row in csv.DictReader(fh) if covered(row, names)][: args.n]
    for row in rows:
        reference = row["Answer"]
        keys = key_figures(reference)
        if not keys:
            continue
        prepared = await service.prepare(
            QueryInput(row["Question"], collections=(args.collection,), top_k=6), ANONYMOUS
        )
        passages = {p.n: p.text for p in prepared.passages}
        holding = {k: [n for n, t in passages.items() if contains_figure(t, k)] for k in keys}
        cited = sorted({n for ns in holding.values() for n in ns})
        if not cited:
            continue
        answer = f"{reference.strip()} {''.join(f'[{n}]' for n in cited)}"
        figs = [f for f in find_figures(answer) if bare(f.text) in holding]
        good = [f for f in figs if holding[bare(f.text)]]
        result = check_answer(answer, passages, row["Question"])
        spans = {u.span for u in result.unsupported}
        for fig in good:
            correct += 1
            if fig.span in spans:
                flagged_correct += 1
                wrongly.append(f"{fig.text!r} in: {row['Question'][:70]}")
        for fig in good:
            for style in invented:
                fake = perturb(fig.text, rng, style)
                if fake == fig.text or any(
                    contains_figure(t, bare(fake)) for t in passages.values()
                ):
                    continue
                changed = answer[: fig.start] + fake + answer[fig.end :]
                check = check_answer(changed, passages, row["Question"])
                hit = any(u.span[0] <= fig.start < u.span[1] for u in check.unsupported)
                invented[style][0] += hit
                invented[style][1] += 1
                if not hit:
                    missed.append(f"{fig.text!r} -> {fake!r}")
    print(f"\nlabelled set from {len(rows)} sec10q dev questions on indexed documents (top_k 6)")
    print(
        f"  correct figures wrongly flagged: {flagged_correct}/{correct}"
        f" ({flagged_correct / max(correct, 1):.1%})"
    )
    total = [sum(v[0] for v in invented.values()), sum(v[1] for v in invented.values())]
    for style, (hit, n) in {**invented, "all": total}.items():
        print(f"  invented figures flagged ({style}): {hit}/{n} ({hit / max(n, 1):.1%})")
    if args.verbose:
        print("  wrongly flagged:", *wrongly[:20], sep="\n    ")
        print("  missed inventions:", *missed[:20], sep="\n    ")
    retriever.close()


PASSAGE = (
    "Total net sales (in millions): Products 94,836 and Services 24,213; operating income"
    " rose 12% to 28,318. The quarter ended on April 1, 2023. "
)


def speed(_: argparse.Namespace) -> None:
    passages = {n: PASSAGE * 4 for n in range(1, 7)}
    piece = 'Sales were $94.8 billion [1], not $97.3 billion [2]; "operating income rose" [3]. '
    for size in (5_000, 10_000, 20_000, 40_000):
        answer = (piece * (size // len(piece) + 1))[:size]
        wall, cpu = [], []
        for _ in range(7):
            started, started_cpu = time.perf_counter(), time.process_time()
            result = check_answer(answer, passages)
            cpu.append((time.process_time() - started_cpu) * 1000)
            wall.append((time.perf_counter() - started) * 1000)
        ms = min(cpu)
        print(
            f"  {size:6d} chars: {result.checked:5d} checked, {len(result.unsupported):4d}"
            f" unsupported; CPU min {ms:6.1f} ms ({ms / size * 1000:.2f} us/char), wall"
            f" median {statistics.median(wall):6.1f} ms (load average {os.getloadavg()[0]:.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("rates", "speed"))
    parser.add_argument("--questions", default="/work/shared/data/sec10q/qna-dev.csv")
    parser.add_argument("--collection", default="sec10q")
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--log-dir", default="/tmp/grounding-bench-reasoning")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if args.what == "rates":
        asyncio.run(rates(args))
    else:
        speed(args)


if __name__ == "__main__":
    main()
