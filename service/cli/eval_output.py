"""``inhouse eval`` output: progress on stderr, tables of runs and of deltas on stdout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from service.cli.output import console, print_json

METRIC_LABELS = {
    "ndcg@10": "nDCG@10",
    "recall@100": "Recall@100",
    "mrr@10": "MRR@10",
    "doc@5": "doc@5",
    "figure@6": "figure@6",
}


class EvalProgress:
    """Two bars on stderr: indexing (when the corpus needs it), then querying."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}", style="dim"),
            console=Console(stderr=True, highlight=False),
        )

    def __enter__(self) -> EvalProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def indexing(self) -> _IndexListener:
        return _IndexListener(self._progress)

    def querying(self, total: int) -> Callable[[int], None]:
        task = self._progress.add_task("querying", total=total, note="")

        def done(count: int) -> None:
            self._progress.update(task, completed=count)

        return done


class _IndexListener:
    """``ingest.pipeline.ProgressListener`` as a progress bar."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: Any = None
        self._chunks = 0

    def on_start(self, total: int) -> None:
        self._task = self._progress.add_task("indexing", total=total, note="")

    def on_file(self, result: Any, done: int, total: int) -> None:
        if result.status == "indexed":
            self._chunks += result.chunks
        self._progress.update(self._task, completed=done, note=f"{self._chunks} chunks")


def _title(run: dict[str, Any]) -> str:
    split = f" ({run['split']})" if run.get("split") else ""
    return f"{run['dataset']}{split}"


def _n(run: dict[str, Any], metric: str) -> str:
    return str(run.get("n", {}).get(metric, run.get("queries", "")))


def print_runs(runs: list[dict[str, Any]]) -> None:
    """One table: each run's metrics (with n) and retrieval latency."""
    table = Table(show_edge=False, pad_edge=False)
    for name, justify in (("data set", "left"), ("collection", "left"), ("metric", "left"),
                          ("value", "right"), ("n", "right")):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for number, run in enumerate(runs):
        if number:
            table.add_section()
        first = True
        for metric, value in run["metrics"].items():
            table.add_row(
                _title(run) if first else "",
                run.get("collection", "") if first else "",
                METRIC_LABELS.get(metric, metric),
                f"{value:.4f}",
                _n(run, metric),
            )
            first = False
        latency = run.get("latency_ms", {})
        for key in ("p50", "p95"):
            if key in latency:
                table.add_row("", "", f"latency {key}", f"{latency[key]:.1f} ms", "")
    console().print(table)
    for run in runs:
        config = run.get("config", {})
        mode = config.get("retrieval", {}).get("mode", "?")
        console().print(
            f"[dim]{_title(run)}: {config.get('embedder', '?')}, retrieval {mode},"
            f" chunks {config.get('chunk_tokens', '?')} tokens, depth {config.get('depth', '?')}"
            + (_index_note(run["index"]) if "index" in run else "")
            + "[/]"
        )


def _index_note(index: dict[str, Any]) -> str:
    how = "reused" if index.get("reused") else f"indexed in {index.get('elapsed_s', 0):.0f}s"
    return f"; {index.get('documents')} documents, {index.get('chunks')} chunks ({how})"


def compare_runs(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Metric and latency deltas (after - before) for the metrics both runs have."""
    metrics = {
        name: {"before": before["metrics"][name], "after": value,
               "delta": round(value - before["metrics"][name], 4)}
        for name, value in after["metrics"].items()
        if name in before["metrics"]
    }  # fmt: skip
    latency = {
        key: {"before": before["latency_ms"][key], "after": value,
              "delta": round(value - before["latency_ms"][key], 2)}
        for key, value in after.get("latency_ms", {}).items()
        if key in before.get("latency_ms", {})
    }  # fmt: skip
    same = {key: before.get(key) == after.get(key) for key in ("dataset", "split", "queries")}
    return {"kind": after["kind"], "metrics": metrics, "latency_ms": latency, "same": same}


def print_compare(before: dict[str, Any], after: dict[str, Any], *, as_json: bool) -> None:
    deltas = compare_runs(before, after)
    if as_json:
        print_json(deltas)
        return
    out = console()
    for key, same in deltas["same"].items():
        if not same:
            out.print(f"[yellow]note:[/] {key} differs: {before.get(key)!r} vs {after.get(key)!r}")
    table = Table(show_edge=False, pad_edge=False)
    for name in ("metric", "A", "B", "delta"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    for name, row in deltas["metrics"].items():
        style = "green" if row["delta"] > 0 else "red" if row["delta"] < 0 else ""
        table.add_row(
            METRIC_LABELS.get(name, name),
            f"{row['before']:.4f}",
            f"{row['after']:.4f}",
            f"[{style}]{row['delta']:+.4f}[/]" if style else f"{row['delta']:+.4f}",
        )
    for key, row in deltas["latency_ms"].items():
        table.add_row(
            f"latency {key}",
            f"{row['before']:.1f} ms",
            f"{row['after']:.1f} ms",
            f"{row['delta']:+.1f} ms",
        )
    out.print(table)
