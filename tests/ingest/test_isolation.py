"""ParserPool: worker processes contain timeouts, memory blow-ups and crashes."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from ingest import isolation
from ingest.documents import ParsedDocument
from ingest.errors import FileRejected
from ingest.isolation import ParserPool
from ingest.parser_worker import Worker
from ingest.settings import ParseSettings
from tests.ingest.fixtures import BAD_FILES, MARKERS, write_big_text, write_long_docx

Result = ParsedDocument | FileRejected


def _code(result: Result) -> str:
    return result.code if isinstance(result, FileRejected) else "ok"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def pool() -> Iterator[ParserPool]:
    with ParserPool(ParseSettings(timeout_s=120), workers=2) as shared:
        yield shared


@pytest.fixture(scope="module")
def big_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two MiB of prose: allowed, but a minute or more of unstructured's NLP."""
    return write_big_text(tmp_path_factory.mktemp("big") / "novel.txt", 2)


def test_parses_the_corpus(pool: ParserPool, corpus: dict[str, Path]) -> None:
    results = dict(pool.parse_many(corpus.items()))
    assert set(results) == set(corpus)
    for name, marker in MARKERS.items():
        result = results[name]
        assert isinstance(result, ParsedDocument), (name, result)
        assert marker in "\n".join(e.text for e in result.elements)
    for name, code in BAD_FILES.items():
        assert _code(results[name]) == code, (name, results[name])


def test_workers_parse_every_format_without_torch_loaded(
    pool: ParserPool, corpus: dict[str, Path]
) -> None:
    results = dict(pool.parse_many(corpus.items()))  # PDF, office, mail, markup...
    assert all(isinstance(results[name], ParsedDocument) for name in MARKERS)
    for pid in pool.worker_pids:
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "libtorch" not in maps, f"parser worker {pid} loaded torch"
        assert "en_core_web_sm" in maps or "spacy" in maps or "thinc" in maps


def test_consumes_items_lazily(pool: ParserPool, corpus: dict[str, Path]) -> None:
    pulled = 0

    def items() -> Iterator[tuple[int, Path]]:
        nonlocal pulled
        for number in range(12):
            pulled += 1
            yield number, corpus["txt"]

    seen_at_first_result = None
    keys = []
    for key, result in pool.parse_many(items()):
        seen_at_first_result = seen_at_first_result or pulled
        keys.append(key)
        assert _code(result) == "ok"
    assert sorted(keys) == list(range(12))
    assert seen_at_first_result is not None and seen_at_first_result <= 4


def test_timeout_kills_and_replaces_the_worker(corpus: dict[str, Path], big_text: Path) -> None:
    with ParserPool(ParseSettings(timeout_s=2), workers=1) as pool:
        results = dict(pool.parse_many([("big", big_text), ("small", corpus["txt"])]))
        assert len(pool.worker_pids) == 1
    # big_text needs a minute or more: a "timeout" result means the 2 s limit cut it short
    assert _code(results["big"]) == "timeout"
    assert "longer than 2 s" in str(results["big"])
    assert _code(results["small"]) == "ok"


def test_memory_cap(tmp_path: Path, corpus: dict[str, Path]) -> None:
    with ParserPool(ParseSettings(), workers=1) as probe:
        assert _code(dict(probe.parse_many([(0, corpus["txt"])]))[0]) == "ok"
        idle_mb = psutil.Process(probe.worker_pids[0]).memory_info().rss // (1024 * 1024)
    hog = write_long_docx(tmp_path / "long.docx", paragraphs=1_000_000)  # ~3 MiB on disk
    settings = ParseSettings(memory_mb=idle_mb + 300, timeout_s=120)
    with ParserPool(settings, workers=1) as pool:
        items = [("before", corpus["txt"]), ("hog", hog), ("after", corpus["md"])]
        results = dict(pool.parse_many(items))
    assert _code(results["hog"]) == "too_large"
    assert "memory cap" in str(results["hog"])
    assert _code(results["before"]) == _code(results["after"]) == "ok"


def test_crashed_worker_is_replaced(corpus: dict[str, Path], big_text: Path) -> None:
    with ParserPool(ParseSettings(timeout_s=120), workers=1) as pool:
        killed: list[int] = []

        def kill_when_busy() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                for pid, path in pool.busy_paths.items():
                    if path == big_text:
                        time.sleep(0.3)
                        os.kill(pid, signal.SIGSEGV)
                        killed.append(pid)
                        return
                time.sleep(0.02)

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        items = [("big", big_text), ("next", corpus["md"]), ("last", corpus["html"])]
        results = dict(pool.parse_many(items))
        killer.join()
        assert killed and killed[0] not in pool.worker_pids
    assert _code(results["big"]) == "parse_error"
    assert "crashed" in str(results["big"]) and "SIGSEGV" in str(results["big"])
    assert _code(results["next"]) == _code(results["last"]) == "ok"


def test_stopping_early_then_reusing(corpus: dict[str, Path], big_text: Path) -> None:
    with ParserPool(ParseSettings(timeout_s=120), workers=2) as pool:
        first = pool.parse_many([("big", big_text), ("small", corpus["txt"])])
        key, result = next(first)
        busy = list(pool.busy_paths)
        first.close()  # the consumer stops: the busy worker must not keep parsing
        assert (key, _code(result)) == ("small", "ok")
        assert busy and not any(_alive(pid) for pid in busy)
        assert _code(dict(pool.parse_many([("again", corpus["md"])]))["again"]) == "ok"


def test_close_leaves_no_workers(corpus: dict[str, Path]) -> None:
    pool = ParserPool(ParseSettings(), workers=2)
    # its own folder only: other processes on the machine create and remove theirs meanwhile
    own = pool._tmp_root
    assert own.parent == Path(tempfile.gettempdir()) and own.name.startswith("inhouse-parse-")
    assert own.is_dir()
    assert _code(dict(pool.parse_many([("epub", corpus["epub"])]))["epub"]) == "ok"
    pids = pool.worker_pids
    assert len(pids) == 2
    pool.close()
    assert not any(_alive(pid) for pid in pids)
    helpers = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")
    for child in psutil.Process().children(recursive=True):
        assert any(h in " ".join(child.cmdline()) for h in helpers), child.cmdline()
    assert not own.exists()
    with pytest.raises(RuntimeError, match="closed"):
        next(pool.parse_many([("x", corpus["txt"])]))


def test_a_worker_serves_file_after_file_until_it_grows(
    monkeypatch: pytest.MonkeyPatch, corpus: dict[str, Path]
) -> None:
    """A worker is not retired after a fixed count of small files; one whose memory grew past
    the limit between files is (the first spreadsheet imports its readers: ~40 MB)."""
    with ParserPool(ParseSettings(timeout_s=120), workers=1) as pool:
        kept = dict(pool.parse_many([(n, corpus[n]) for n in ("txt", "md", "xlsx", "html")]))
        assert len(pool.worker_pids) == 1
        first = pool.worker_pids[0]
        monkeypatch.setattr(isolation, "RECYCLE_GROWTH_MB", 24)
        kept |= dict(pool.parse_many([("again", corpus["txt"])]))  # grown since ready: retired
        assert not _alive(first) and first not in pool.worker_pids
        kept |= dict(pool.parse_many([("next", corpus["md"])]))
        assert len(pool.worker_pids) == 1 and _alive(pool.worker_pids[0])
    assert all(_code(r) == "ok" for r in kept.values()), kept


class FakeClock:
    """The pool's clock, advanced by the test; counts how often the pool reads it."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._reads = 0
        self._changed = threading.Condition()

    def __call__(self) -> float:
        with self._changed:
            self._reads += 1
            self._changed.notify_all()
            return self._now

    def advance(self, seconds: float) -> None:
        with self._changed:
            self._now += seconds

    def wait_reads(self, count: int) -> None:
        """Wait until the pool has read the clock ``count`` more times."""
        with self._changed:
            target = self._reads + count
            # hang guard only (the monitor reads the clock every 50 ms): wide for loaded CI
            assert self._changed.wait_for(lambda: self._reads >= target, timeout=120)


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 300  # hang guard only, not a measurement: wide on purpose
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.01)


def _worker_on(pool: ParserPool, path: Path) -> Worker | None:
    with pool._lock:
        return next((w for w in pool._workers if w.job and w.job.path == path), None)


def _all_ready(pool: ParserPool, path: Path) -> bool:
    """Parse ``path`` once (the pool reads its workers' ready messages while it collects)."""
    list(pool.parse_many([(0, path)]))
    with pool._lock:
        return len(pool._workers) == pool._size and all(w.ready for w in pool._workers)


def test_injected_clock_times_out_a_parse(big_text: Path) -> None:
    """The clock the slow-consumer test advances is the one that times parses."""
    clock = FakeClock()
    with ParserPool(ParseSettings(timeout_s=60), workers=1, clock=clock) as pool:
        results = pool.parse_many([("big", big_text)])
        box: list[tuple[str, Result]] = []
        consumer = threading.Thread(target=lambda: box.append(next(results)))
        consumer.start()  # drives dispatch and collection

        def parsing() -> bool:
            worker = _worker_on(pool, big_text)
            job = worker.job if worker is not None else None
            return worker is not None and job is not None and worker.parsing.value == job.id

        _wait_until(parsing, "the worker parses the big text")  # a minute or more of NLP
        clock.advance(61)
        consumer.join(timeout=300)  # hang guard only
    assert box and _code(box[0][1]) == "timeout"


def test_slow_consumer_does_not_time_out_finished_files(
    tmp_path: Path, corpus: dict[str, Path]
) -> None:
    """A result too big for the pipe waits for the reader without counting as parse time.

    Two wide tables on two workers: whichever comes second is still pending when the
    consumer pauses after the first. Once its worker is blocked handing the result over
    (bytes waiting in the pipe), the pool's clock jumps past the timeout and the monitor
    runs; the result must still arrive whole. Order and causality, no sleeping.
    """
    row = "alpha,beta,gamma,delta,12345,67890,a longer text cell to widen the table\n"
    tables = {}
    for name in ("one", "two"):
        tables[name] = tmp_path / f"{name}.csv"
        # ~1 MiB of cells: parses in seconds; its result outgrows the socket buffer (~200 KiB)
        tables[name].write_text("a,b,c,d,e,f,g\n" + row * 14_000, encoding="utf-8")
    clock = FakeClock()
    with ParserPool(ParseSettings(timeout_s=60), workers=2, clock=clock) as pool:
        _wait_until(lambda: _all_ready(pool, corpus["txt"]), "both workers ready")
        results = {}  # both tables dispatched at once, one to each idle worker
        for key, result in pool.parse_many(tables.items()):
            results[key] = result
            if len(results) == 1:  # the consumer is busy (e.g. embedding the first file)
                pending = tables["two" if key == "one" else "one"]
                worker = _worker_on(pool, pending)
                assert worker is not None
                _wait_until(worker.conn.poll, "the pending table's result waits in the pipe")
                clock.advance(600)  # ten times the parse timeout
                clock.wait_reads(2)  # the monitor has looked at least once since
                assert worker.doom is None and worker.process.is_alive()
    for key in tables:
        assert _code(results[key]) == "ok", results[key]
        document = results[key]
        assert isinstance(document, ParsedDocument)
        assert sum(len(e.text) for e in document.elements) > 900_000
