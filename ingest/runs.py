"""Re-index run history, live progress and the scheduler's next-run times (shared database).

Tables (``ingest.db.schema``, next to ``documents``):
    source_runs          one row per run: trigger, outcome, times, counts, progress, ETA
    source_run_failures  the failed files of a run, with reason code and message
    source_roots         which (collection, root) each source has indexed (for ``--prune``)
    source_schedule      next run time per source, written by the scheduler that owns it
    schedule_ticks       one row per (source, scheduled slot): the scheduler that wrote it fires
Outcomes: ``running``, ``succeeded``, ``partial`` (some files failed), ``interrupted``
(stopped; the next run resumes), ``error`` (the run itself failed) and ``abandoned``
(its process died; noticed by the next run or by a status read).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from sqlalchemy import Row, delete, select, union, update

from ingest.db.schema import (
    schedule_ticks,
    source_roots,
    source_run_failures,
    source_runs,
    source_schedule,
)
from ingest.manifest import Manifest, utc_now
from ingest.report import OUTCOMES, IngestReport
from ingest.run_records import (
    HOST,
    PROGRESS_EVERY_S,
    RunProgress,
    RunRecord,
    SourceRoot,
    process_alive,
)

KEEP_RUNS = 50  # per source
KEEP_TICKS = 100  # per source: enough for the slowest ticker to find a slot taken
KEEP_FAILURES = 200  # per run

__all__ = [
    "HOST",
    "PROGRESS_EVERY_S",
    "RunProgress",
    "RunRecord",
    "RunStore",
    "SourceRoot",
    "process_alive",
]


class RunStore:
    """Reads and writes run history in the manifest's database."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.db = manifest.db

    # -- a run's life -------------------------------------------------------------------
    def start(
        self, source: str, collection: str, *, trigger: str, full: bool, queued: bool = False
    ) -> str:
        """Record a run that has just taken its source lock, or (``queued``) that the work
        queue runs: pid 0, no process owns it (``ingest.queue_dispatch``). Returns its id."""
        run_id = uuid.uuid4().hex
        with self.db.write() as conn:
            conn.execute(
                source_runs.insert().values(
                    id=run_id, source=source, collection=collection, trigger=trigger,
                    full_scan=full, outcome="running", started_at=utc_now(), host=HOST,
                    pid=0 if queued else os.getpid(),
                )
            )  # fmt: skip
        return run_id

    def progress(
        self, run_id: str, *, done: int, total: int, eta_s: float | None, counts: dict[str, int]
    ) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(source_runs)
                .where(source_runs.c.id == run_id)
                .values(
                    files_done=done, files_total=total, eta_s=eta_s, progress_at=utc_now(),
                    **{o: counts[o] for o in OUTCOMES},
                )
            )  # fmt: skip

    def finish(
        self,
        run_id: str,
        outcome: str,
        *,
        report: IngestReport | None = None,
        error: str | None = None,
    ) -> None:
        """Close a run with its outcome, counts and failed files; trims old history."""
        runs = source_runs.c
        with self.db.write() as conn:
            this = update(source_runs).where(runs.id == run_id)
            if report is not None:
                counts = report.counts()
                conn.execute(
                    this.values(files_done=len(report.files), **{o: counts[o] for o in OUTCOMES})
                )
                failures = [r for r in report.files if r.status == "failed"][:KEEP_FAILURES]
                if failures:
                    conn.execute(
                        source_run_failures.insert(),
                        [
                            {"run_id": run_id, "path": r.path, "root": r.root,
                             "reason": r.reason, "message": r.message}
                            for r in failures
                        ],
                    )  # fmt: skip
            conn.execute(
                this.values(outcome=outcome, finished_at=utc_now(), eta_s=None, error=error)
            )
            source = conn.execute(select(runs.source).where(runs.id == run_id)).scalar_one()
            old = list(
                conn.execute(
                    select(runs.id)
                    .where(runs.source == source)
                    .order_by(runs.started_at.desc())
                    .offset(KEEP_RUNS)
                ).scalars()
            )
            if old:
                conn.execute(
                    delete(source_run_failures).where(source_run_failures.c.run_id.in_(old))
                )
                conn.execute(delete(source_runs).where(runs.id.in_(old)))

    def mark_abandoned(self, source: str | None = None, *, lock_held: bool = False) -> int:
        """Close ``running`` rows whose process is gone (e.g. after ``kill -9``).

        With ``lock_held`` (the caller holds ``source``'s lock, so nothing else can be
        running it) every ``running`` row of the source is closed, whatever its pid says.
        """
        runs = source_runs.c
        query = select(runs.id, runs.host, runs.pid).where(runs.outcome == "running")
        if source:
            query = query.where(runs.source == source)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        dead = [
            row.id for row in rows if (lock_held and source) or not process_alive(row.host, row.pid)
        ]
        if dead:
            with self.db.write() as conn:
                conn.execute(
                    update(source_runs)
                    .where(runs.id.in_(dead), runs.outcome == "running")
                    .values(
                        outcome="abandoned",
                        eta_s=None,
                        error="the process running it died; the next run resumes",
                    )
                )
        return len(dead)

    # -- reads --------------------------------------------------------------------------
    def _runs(self, query: Any, with_failures: bool) -> list[RunRecord]:
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            return [self._record(conn, row, with_failures) for row in rows]

    def get(self, run_id: str, *, with_failures: bool = True) -> RunRecord | None:
        found = self._runs(select(source_runs).where(source_runs.c.id == run_id), with_failures)
        return found[0] if found else None

    def recent(self, source: str, limit: int = 5, *, with_failures: bool = True) -> list[RunRecord]:
        query = (
            select(source_runs)
            .where(source_runs.c.source == source)
            .order_by(source_runs.c.started_at.desc())
            .limit(limit)
        )
        return self._runs(query, with_failures)

    def running(self, source: str) -> RunRecord | None:
        query = (
            select(source_runs)
            .where(source_runs.c.source == source, source_runs.c.outcome == "running")
            .order_by(source_runs.c.started_at.desc())
            .limit(1)
        )
        found = self._runs(query, False)
        return found[0] if found else None

    def history_sources(self) -> list[str]:
        """Every source name with recorded runs or roots."""
        names = union(select(source_runs.c.source), select(source_roots.c.source))
        with self.db.read() as conn:
            return sorted(conn.execute(names).scalars())

    @staticmethod
    def _record(conn: Any, row: Row[Any], with_failures: bool) -> RunRecord:
        failures: list[dict[str, str | None]] = []
        if with_failures and row.failed:
            f = source_run_failures.c
            failures = [
                {"path": r.path, "root": r.root, "reason": r.reason, "message": r.message}
                for r in conn.execute(
                    select(f.path, f.root, f.reason, f.message)
                    .where(f.run_id == row.id)
                    .order_by(f.seq)
                )
            ]
        return RunRecord(
            id=row.id,
            source=row.source,
            collection=row.collection,
            trigger=row.trigger,
            full=bool(row.full_scan),
            outcome=row.outcome,
            started_at=row.started_at,
            finished_at=row.finished_at,
            host=row.host,
            pid=row.pid,
            files_total=row.files_total,
            files_done=row.files_done,
            eta_s=row.eta_s,
            counts={o: getattr(row, o) for o in OUTCOMES},
            error=row.error,
            failures=failures,
        )

    # -- roots (for prune) --------------------------------------------------------------
    def record_roots(self, source: str, collection: str, roots: list[str]) -> None:
        if not roots:
            return
        now = utc_now()
        stmt = self.db.insert(source_roots)
        stmt = stmt.on_conflict_do_update(
            index_elements=["source", "collection", "root"],
            set_={"recorded_at": stmt.excluded.recorded_at},
        )
        rows = [
            {"source": source, "collection": collection, "root": root, "recorded_at": now}
            for root in roots
        ]
        with self.db.write() as conn:
            conn.execute(stmt, rows)

    def roots(self) -> list[SourceRoot]:
        r = source_roots.c
        query = select(r.source, r.collection, r.root).order_by(r.source, r.collection, r.root)
        with self.db.read() as conn:
            return [SourceRoot(*row) for row in conn.execute(query)]

    def forget_root(self, item: SourceRoot) -> None:
        r = source_roots.c
        with self.db.write() as conn:
            conn.execute(
                delete(source_roots).where(
                    r.source == item.source, r.collection == item.collection, r.root == item.root
                )
            )

    def forget_source(self, source: str) -> None:
        """Drop a removed source's history and schedule row (after its chunks are pruned)."""
        ids = select(source_runs.c.id).where(source_runs.c.source == source)
        with self.db.write() as conn:
            conn.execute(delete(source_run_failures).where(source_run_failures.c.run_id.in_(ids)))
            for table in (source_runs, source_roots, source_schedule, schedule_ticks):
                conn.execute(delete(table).where(table.c.source == source))

    # -- schedule -----------------------------------------------------------------------
    def set_next_run(self, source: str, next_run_at: str | None) -> None:
        stmt = self.db.insert(source_schedule).values(
            source=source, next_run_at=next_run_at, host=HOST, pid=os.getpid(),
            updated_at=utc_now(),
        )  # fmt: skip
        new = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=["source"],
            set_={"next_run_at": new.next_run_at, "host": new.host, "pid": new.pid,
                  "updated_at": new.updated_at},
        )  # fmt: skip
        with self.db.write() as conn:
            conn.execute(stmt)

    def claim_tick(self, source: str, tick: str) -> str | None:
        """Take the scheduled slot ``tick`` (ISO UTC) of ``source`` for this process.

        None: taken, fire it. Otherwise the slot was already taken and the answer says by
        whom (``pid=N host=H``). One INSERT decides, on either backend: the row's primary
        key makes every other scheduler's insert a no-op.
        """
        t = schedule_ticks.c
        stmt = self.db.insert(schedule_ticks).values(
            source=source, tick=tick, host=HOST, pid=os.getpid(), fired_at=utc_now()
        )
        with self.db.write() as conn:
            inserted = stmt.on_conflict_do_nothing().returning(t.tick)
            won = conn.execute(inserted).first() is not None
            if won:
                old = (
                    select(t.tick)
                    .where(t.source == source)
                    .order_by(t.tick.desc())
                    .offset(KEEP_TICKS)
                    .limit(1)
                )
                cutoff = conn.execute(old).scalar()
                if cutoff is not None:
                    conn.execute(delete(schedule_ticks).where(t.source == source, t.tick <= cutoff))
                return None
            row = conn.execute(
                select(t.host, t.pid).where(t.source == source, t.tick == tick)
            ).first()
        return "another scheduler" if row is None else f"pid={row.pid} host={row.host}"

    def clear_next_runs(self, sources: list[str]) -> None:
        """A scheduler stops: forget the next runs it planned (rows of this process only)."""
        s = source_schedule.c
        with self.db.write() as conn:
            conn.execute(
                delete(source_schedule).where(
                    s.source.in_(sources), s.host == HOST, s.pid == os.getpid()
                )
            )

    def scheduled(self, source: str) -> dict[str, Any] | None:
        """The next run a live scheduler has planned for ``source``, if any."""
        with self.db.read() as conn:
            row = conn.execute(
                select(source_schedule).where(source_schedule.c.source == source)
            ).first()
        if row is None or not process_alive(row.host, row.pid):
            return None
        return {"next_run_at": row.next_run_at, "host": row.host, "pid": row.pid}
