"""Re-index run history, live progress and the scheduler's next-run times, in the manifest DB.

Tables (next to ``documents`` in ``manifest.sqlite3``):
    source_runs          one row per run: trigger, outcome, times, counts, progress, ETA
    source_run_failures  the failed files of a run, with reason code and message
    source_roots         which (collection, root) each source has indexed (for ``--prune``)
    source_schedule      next run time per source, written by the scheduler that owns it
Outcomes: ``running``, ``succeeded``, ``partial`` (some files failed), ``interrupted``
(stopped; the next run resumes), ``error`` (the run itself failed) and ``abandoned``
(its process died; noticed by the next run or by a status read).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ingest.manifest import Manifest, utc_now
from ingest.report import OUTCOMES, FileResult, IngestReport

SCHEMA = """
CREATE TABLE IF NOT EXISTS source_runs (
    id           TEXT PRIMARY KEY,
    source       TEXT NOT NULL,
    collection   TEXT NOT NULL,
    trigger      TEXT NOT NULL,
    full_scan    INTEGER NOT NULL DEFAULT 0,
    outcome      TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    files_total  INTEGER,
    files_done   INTEGER NOT NULL DEFAULT 0,
    eta_s        REAL,
    progress_at  TEXT,
    indexed      INTEGER NOT NULL DEFAULT 0,
    unchanged    INTEGER NOT NULL DEFAULT 0,
    removed      INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    error        TEXT
);
CREATE INDEX IF NOT EXISTS source_runs_by_source ON source_runs (source, started_at);
CREATE TABLE IF NOT EXISTS source_run_failures (
    run_id   TEXT NOT NULL,
    path     TEXT NOT NULL,
    root     TEXT NOT NULL,
    reason   TEXT,
    message  TEXT
);
CREATE INDEX IF NOT EXISTS source_run_failures_by_run ON source_run_failures (run_id);
CREATE TABLE IF NOT EXISTS source_roots (
    source      TEXT NOT NULL,
    collection  TEXT NOT NULL,
    root        TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (source, collection, root)
);
CREATE TABLE IF NOT EXISTS source_schedule (
    source       TEXT PRIMARY KEY,
    next_run_at  TEXT,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    updated_at   TEXT NOT NULL
);
"""

KEEP_RUNS = 50  # per source
KEEP_FAILURES = 200  # per run
PROGRESS_EVERY_S = 0.5
HOST = socket.gethostname()


@dataclass(frozen=True, slots=True)
class SourceRoot:
    source: str
    collection: str
    root: str


@dataclass(slots=True)
class RunRecord:
    """One re-index run as stored."""

    id: str
    source: str
    collection: str
    trigger: str
    full: bool
    outcome: str
    started_at: str
    finished_at: str | None
    host: str
    pid: int
    files_total: int | None
    files_done: int
    eta_s: float | None
    counts: dict[str, int]
    error: str | None
    failures: list[dict[str, str | None]] = field(default_factory=list)
    workers: int | None = None  # queued runs: workers holding its files now

    @property
    def progress(self) -> dict[str, Any]:
        """Files done and total, the ETA (seconds, rounded) while running, and for a queued
        run the workers on it now (over every host)."""
        return {
            "files_done": self.files_done,
            "files_total": self.files_total,
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "workers": self.workers,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "collection": self.collection,
            "trigger": self.trigger,
            "full": self.full,
            "outcome": self.outcome,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "pid": self.pid,
            "host": self.host,
            "progress": self.progress,
            "counts": self.counts,
            "error": self.error,
            "failures": self.failures,
        }


def process_alive(host: str, pid: int) -> bool:
    """Whether ``pid`` on ``host`` still runs (a process on another host is assumed alive;
    pid 0: a queued run, which no process owns)."""
    if host != HOST or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """Reads and writes run history through the manifest's connections."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        with manifest.transaction() as conn:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    # -- a run's life -------------------------------------------------------------------
    def start(
        self, source: str, collection: str, *, trigger: str, full: bool, queued: bool = False
    ) -> str:
        """Record a run that has just taken its source lock, or (``queued``) that the work
        queue runs: pid 0, no process owns it (``ingest.queue_dispatch``). Returns its id."""
        run_id = uuid.uuid4().hex
        pid = 0 if queued else os.getpid()
        with self.manifest.transaction() as conn:
            conn.execute(
                """INSERT INTO source_runs (id, source, collection, trigger, full_scan, outcome,
                       started_at, host, pid) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)""",
                (run_id, source, collection, trigger, int(full), utc_now(), HOST, pid),
            )
        return run_id

    def progress(
        self, run_id: str, *, done: int, total: int, eta_s: float | None, counts: dict[str, int]
    ) -> None:
        with self.manifest.transaction() as conn:
            conn.execute(
                """UPDATE source_runs SET files_done = ?, files_total = ?, eta_s = ?,
                       progress_at = ?, indexed = ?, unchanged = ?, removed = ?, failed = ?
                   WHERE id = ?""",
                (done, total, eta_s, utc_now(), *(counts[o] for o in OUTCOMES), run_id),
            )

    def finish(
        self,
        run_id: str,
        outcome: str,
        *,
        report: IngestReport | None = None,
        error: str | None = None,
    ) -> None:
        """Close a run with its outcome, counts and failed files; trims old history."""
        with self.manifest.transaction() as conn:
            if report is not None:
                counts = report.counts()
                conn.execute(
                    """UPDATE source_runs SET files_done = ?, indexed = ?, unchanged = ?,
                           removed = ?, failed = ? WHERE id = ?""",
                    (len(report.files), *(counts[o] for o in OUTCOMES), run_id),
                )
                failures = [r for r in report.files if r.status == "failed"][:KEEP_FAILURES]
                conn.executemany(
                    """INSERT INTO source_run_failures (run_id, path, root, reason, message)
                       VALUES (?, ?, ?, ?, ?)""",
                    [(run_id, r.path, r.root, r.reason, r.message) for r in failures],
                )
            conn.execute(
                """UPDATE source_runs SET outcome = ?, finished_at = ?, eta_s = NULL, error = ?
                   WHERE id = ?""",
                (outcome, utc_now(), error, run_id),
            )
            source = conn.execute(
                "SELECT source FROM source_runs WHERE id = ?", (run_id,)
            ).fetchone()[0]
            old = [
                row[0]
                for row in conn.execute(
                    """SELECT id FROM source_runs WHERE source = ?
                       ORDER BY started_at DESC LIMIT -1 OFFSET ?""",
                    (source, KEEP_RUNS),
                )
            ]
            conn.executemany(
                "DELETE FROM source_run_failures WHERE run_id = ?", [(i,) for i in old]
            )
            conn.executemany("DELETE FROM source_runs WHERE id = ?", [(i,) for i in old])

    def mark_abandoned(self, source: str | None = None, *, lock_held: bool = False) -> int:
        """Close ``running`` rows whose process is gone (e.g. after ``kill -9``).

        With ``lock_held`` (the caller holds ``source``'s lock, so nothing else can be
        running it) every ``running`` row of the source is closed, whatever its pid says.
        """
        rows = self.manifest.execute(
            "SELECT id, host, pid FROM source_runs WHERE outcome = 'running'"
            + (" AND source = ?" if source else ""),
            (source,) if source else (),
        )
        dead = [
            row["id"]
            for row in rows
            if (lock_held and source) or not process_alive(row["host"], row["pid"])
        ]
        if dead:
            with self.manifest.transaction() as conn:
                conn.executemany(
                    """UPDATE source_runs SET outcome = 'abandoned', eta_s = NULL,
                           error = 'the process running it died; the next run resumes'
                       WHERE id = ? AND outcome = 'running'""",
                    [(i,) for i in dead],
                )
        return len(dead)

    # -- reads --------------------------------------------------------------------------
    def get(self, run_id: str, *, with_failures: bool = True) -> RunRecord | None:
        rows = self.manifest.execute("SELECT * FROM source_runs WHERE id = ?", (run_id,))
        return self._record(rows[0], with_failures) if rows else None

    def recent(self, source: str, limit: int = 5, *, with_failures: bool = True) -> list[RunRecord]:
        rows = self.manifest.execute(
            "SELECT * FROM source_runs WHERE source = ? ORDER BY started_at DESC LIMIT ?",
            (source, limit),
        )
        return [self._record(row, with_failures) for row in rows]

    def running(self, source: str) -> RunRecord | None:
        rows = self.manifest.execute(
            """SELECT * FROM source_runs WHERE source = ? AND outcome = 'running'
               ORDER BY started_at DESC LIMIT 1""",
            (source,),
        )
        return self._record(rows[0], False) if rows else None

    def history_sources(self) -> list[str]:
        """Every source name with recorded runs or roots."""
        rows = self.manifest.execute(
            "SELECT source FROM source_runs UNION SELECT source FROM source_roots ORDER BY 1"
        )
        return [row[0] for row in rows]

    def _record(self, row: Any, with_failures: bool) -> RunRecord:
        failures: list[dict[str, str | None]] = []
        if with_failures and row["failed"]:
            failures = [
                {
                    "path": f["path"],
                    "root": f["root"],
                    "reason": f["reason"],
                    "message": f["message"],
                }
                for f in self.manifest.execute(
                    "SELECT * FROM source_run_failures WHERE run_id = ? ORDER BY rowid",
                    (row["id"],),
                )
            ]
        return RunRecord(
            id=row["id"],
            source=row["source"],
            collection=row["collection"],
            trigger=row["trigger"],
            full=bool(row["full_scan"]),
            outcome=row["outcome"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            host=row["host"],
            pid=row["pid"],
            files_total=row["files_total"],
            files_done=row["files_done"],
            eta_s=row["eta_s"],
            counts={o: row[o] for o in OUTCOMES},
            error=row["error"],
            failures=failures,
        )

    # -- roots (for prune) --------------------------------------------------------------
    def record_roots(self, source: str, collection: str, roots: list[str]) -> None:
        now = utc_now()
        with self.manifest.transaction() as conn:
            conn.executemany(
                """INSERT INTO source_roots (source, collection, root, recorded_at)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT DO UPDATE SET recorded_at = excluded.recorded_at""",
                [(source, collection, root, now) for root in roots],
            )

    def roots(self) -> list[SourceRoot]:
        rows = self.manifest.execute(
            "SELECT source, collection, root FROM source_roots ORDER BY source, collection, root"
        )
        return [SourceRoot(row[0], row[1], row[2]) for row in rows]

    def forget_root(self, item: SourceRoot) -> None:
        with self.manifest.transaction() as conn:
            conn.execute(
                "DELETE FROM source_roots WHERE source = ? AND collection = ? AND root = ?",
                (item.source, item.collection, item.root),
            )

    def forget_source(self, source: str) -> None:
        """Drop a removed source's history and schedule row (after its chunks are pruned)."""
        with self.manifest.transaction() as conn:
            conn.execute(
                """DELETE FROM source_run_failures WHERE run_id IN
                       (SELECT id FROM source_runs WHERE source = ?)""",
                (source,),
            )
            for table in ("source_runs", "source_roots", "source_schedule"):
                conn.execute(f"DELETE FROM {table} WHERE source = ?", (source,))

    # -- schedule -----------------------------------------------------------------------
    def set_next_run(self, source: str, next_run_at: str | None) -> None:
        with self.manifest.transaction() as conn:
            conn.execute(
                """INSERT INTO source_schedule (source, next_run_at, host, pid, updated_at)
                   VALUES (?, ?, ?, ?, ?) ON CONFLICT(source) DO UPDATE SET
                       next_run_at = excluded.next_run_at, host = excluded.host,
                       pid = excluded.pid, updated_at = excluded.updated_at""",
                (source, next_run_at, HOST, os.getpid(), utc_now()),
            )

    def clear_next_runs(self, sources: list[str]) -> None:
        """A scheduler stops: forget the next runs it planned (rows of this process only)."""
        with self.manifest.transaction() as conn:
            conn.executemany(
                "DELETE FROM source_schedule WHERE source = ? AND host = ? AND pid = ?",
                [(name, HOST, os.getpid()) for name in sources],
            )

    def scheduled(self, source: str) -> dict[str, Any] | None:
        """The next run a live scheduler has planned for ``source``, if any."""
        rows = self.manifest.execute("SELECT * FROM source_schedule WHERE source = ?", (source,))
        if not rows or not process_alive(rows[0]["host"], rows[0]["pid"]):
            return None
        row = rows[0]
        return {"next_run_at": row["next_run_at"], "host": row["host"], "pid": row["pid"]}


class RunProgress:
    """A pipeline ``ProgressListener`` that writes files done / total and an ETA to a run row."""

    def __init__(self, store: RunStore, run_id: str, *, every_s: float = PROGRESS_EVERY_S) -> None:
        self._store = store
        self._run_id = run_id
        self._every_s = every_s
        self._started = time.monotonic()
        self._written = 0.0
        self._counts: dict[str, int] = {o: 0 for o in OUTCOMES}

    def on_start(self, total: int) -> None:
        self._started = time.monotonic()
        self._store.progress(self._run_id, done=0, total=total, eta_s=None, counts=self._counts)
        self._written = self._started

    def on_file(self, result: FileResult, done: int, total: int) -> None:
        self._counts[result.status] += 1
        now = time.monotonic()
        if now - self._written < self._every_s and done < total:
            return
        rate = done / max(now - self._started, 1e-6)
        eta = (total - done) / rate if rate > 0 else None
        self._store.progress(self._run_id, done=done, total=total, eta_s=eta, counts=self._counts)
        self._written = now
