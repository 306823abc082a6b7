"""One parser worker process of ``ingest.isolation.ParserPool``: the parent's handle on it
(pipe, the job it is on, kill with its children, reap) and the process's own loop.

The worker keeps torch out (``ingest.parser_env``), warms the unstructured partitioners up
once, says ``ready``, then parses the paths it is sent until told to stop. It marks the job
it is parsing in shared memory, so the pool's clock and memory cap apply only while it
parses. Its TMPDIR is its own and is removed with it.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil

from ingest.documents import ParsedDocument
from ingest.errors import FileRejected
from ingest.settings import ParseSettings

QUIET_LOGGERS = ("unstructured", "pdfminer", "pypdf", "langdetect", "PIL", "pikepdf")


@dataclass(slots=True)
class Job:
    id: int
    key: Any
    path: Path
    started: float


class Worker:
    """One worker process, the pipe to it, and the file it is parsing (if any)."""

    def __init__(self, context: Any, settings: ParseSettings, tmp_root: Path) -> None:
        parent_end, child_end = context.Pipe(duplex=True)
        # the worker's TMPDIR: what a killed parser (or its pandoc) leaves behind goes with it
        self.tmpdir = Path(tempfile.mkdtemp(prefix="worker-", dir=tmp_root))
        # id of the job the worker is parsing right now, -1 between files (set by the worker)
        self.parsing = context.RawValue("q", -1)
        self.process = context.Process(
            target=worker_main,
            args=(child_end, settings, self.parsing, str(self.tmpdir)),
            name="inhouse-parser",
            daemon=True,
        )
        self.process.start()
        child_end.close()
        self.conn: Connection = parent_end
        self.pid: int = self.process.pid
        self.ready = False
        self.job: Job | None = None
        self.files_done = 0
        self.ready_rss = 0  # resident bytes when it said ready (set by the pool)
        self.spawned = 0.0  # on the pool's clock, set by the pool
        self.doom: FileRejected | None = None  # why the monitor killed it, for the busy file
        self.exitcode: int | None = None  # known once reaped
        self.reaped = False
        self._ps: psutil.Process | None = None

    def rss(self) -> int:
        """Resident bytes of the worker and all its descendants (0 once gone)."""
        total = self.own_rss()
        if not total or self._ps is None:
            return 0
        try:
            children = self._ps.children(recursive=True)
        except psutil.Error:
            return 0
        for child in children:
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
        return total

    def own_rss(self) -> int:
        """Resident bytes of the worker process alone (0 once gone): cheap, read per file."""
        try:
            if self._ps is None:
                self._ps = psutil.Process(self.pid)
            return int(self._ps.memory_info().rss)
        except psutil.Error:
            return 0

    def kill(self) -> None:
        """SIGKILL the worker and every process it started."""
        if self.reaped:
            return
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            children = []
        if self.process.exitcode is None:
            self.process.kill()
        for child in children:
            try:
                child.kill()
            except psutil.Error:
                continue

    def reap(self) -> None:
        """Wait for the (killed or exiting) process and release its handles."""
        if self.reaped:
            return
        self.reaped = True
        self.process.join(timeout=10)
        self.conn.close()
        self.exitcode = self.process.exitcode
        if self.exitcode is not None:
            self.process.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def describe_exit(worker: Worker) -> str:
    code = worker.exitcode
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def worker_main(conn: Connection, settings: ParseSettings, parsing: Any, tmpdir: str) -> None:
    """Worker process: warm up once, then parse paths sent by the parent until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ["TMPDIR"] = tempfile.tempdir = tmpdir  # for this process and its children
    os.dup2(2, 1)  # stray prints from parser libraries must not reach the caller's stdout
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    from ingest.parser_env import keep_torch_out

    keep_torch_out()  # already done where the fork server preloaded the parsers
    from ingest.parse import parse_file, rejection_for, warm_up

    try:
        warm_up()
    except Exception as exc:
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        job_id, path = request
        parsing.value = job_id  # the parent's clock and memory cap apply from here...
        reply: tuple[int, ParsedDocument | None, str | None, str | None]
        try:
            reply = (job_id, parse_file(Path(path), settings), None, None)
        except FileRejected as exc:
            reply = (job_id, None, exc.code, exc.message)
        except BaseException as exc:  # e.g. MemoryError escaping a C extension
            rejection = rejection_for(exc)
            reply = (job_id, None, rejection.code, rejection.message)
        parsing.value = -1  # ...to here: a slow reader of big results is not a slow parse
        conn.send(reply)
