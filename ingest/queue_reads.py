"""The queue's read side: runs, depth, a run's progress over every worker and its results
(``ingest.workqueue.WorkQueue`` adds claims and completions; status pages and the run
history read through this)."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import func, literal, select

from ingest.db.engine import Database
from ingest.db.schema import queue_runs, work_items
from ingest.queue_records import ItemResult, QueueRun, RunProgress
from ingest.report import OUTCOMES, FileResult, IngestReport

FILE_KINDS = ("index", "remove", "member")
"""Items that are one document's result; ``member``: a container's member (an archive or
e-mail attachment indexed as its own document), recorded done with its container's item."""


class QueueReads:
    """Reads of the queue's tables; each method is one short read."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- runs ------------------------------------------------------------------------------
    def run(self, run_id: str) -> QueueRun | None:
        with self.db.read() as conn:
            row = conn.execute(select(queue_runs).where(queue_runs.c.id == run_id)).first()
        return _run(row) if row is not None else None

    def open_runs(self, collection: str | None = None) -> list[QueueRun]:
        """Open runs, oldest first (of one collection when given)."""
        query = select(queue_runs).where(queue_runs.c.state == "open")
        if collection is not None:
            query = query.where(queue_runs.c.collection == collection)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(queue_runs.c.created_at)).all()
        return [_run(row) for row in rows]

    def open_run_of(self, source: str) -> QueueRun | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(queue_runs).where(
                    queue_runs.c.source == source, queue_runs.c.state == "open"
                )
            ).first()
        return _run(row) if row is not None else None

    # -- reads -----------------------------------------------------------------------------
    def depth(self) -> int:
        """Items not done yet, over every open run (the ``inhouse_queue_depth`` gauge)."""
        with self.db.read() as conn:
            return int(
                conn.execute(select(func.count()).where(work_items.c.state != "done")).scalar_one()
            )

    def progress(self, run_id: str, *, now: float | None = None) -> RunProgress | None:
        """Files done / total over every worker, and an ETA from the run's rate so far."""
        run = self.run(run_id)
        if run is None:
            return None
        files = work_items.c.kind.in_(list(FILE_KINDS))
        with self.db.read() as conn:
            discovered = conn.execute(
                select(func.count()).where(
                    work_items.c.run_id == run_id, work_items.c.kind == "discover"
                )
            ).scalar_one()
            rows = conn.execute(
                select(work_items.c.state, work_items.c.status, func.count())
                .where(work_items.c.run_id == run_id, files)
                .group_by(work_items.c.state, work_items.c.status)
            ).all()
            holders = conn.execute(
                select(func.count(func.distinct(work_items.c.owner))).where(
                    work_items.c.run_id == run_id, work_items.c.state == "claimed"
                )
            ).scalar_one()
            listed = conn.execute(
                select(literal(1)).where(
                    work_items.c.run_id == run_id,
                    work_items.c.kind == "discover",
                    work_items.c.state == "done",
                )
            ).first()
        counts: dict[str, int] = {outcome: 0 for outcome in OUTCOMES}
        counts["unchanged"] = run.unchanged
        done = run.unchanged
        pending = 0
        for state, status, count in rows:
            if state == "done":
                done += count
                counts[status or "failed"] = counts.get(status or "failed", 0) + count
            else:
                pending += count
        if not discovered or listed is None:
            return RunProgress(done=done, total=None, eta_s=None, counts=counts, workers=holders)
        total = done + pending
        eta = None
        worked = done - run.unchanged
        if run.first_claim_at is not None and worked > 0 and pending:
            elapsed = max((now or time.time()) - run.first_claim_at, 1e-6)
            eta = pending / (worked / elapsed)
        return RunProgress(done=done, total=total, eta_s=eta, counts=counts, workers=holders)

    def results(self, run_id: str) -> list[ItemResult]:
        """Done file items of a run (for its history: counts and failures)."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(work_items)
                .where(
                    work_items.c.run_id == run_id,
                    work_items.c.kind.in_(list(FILE_KINDS)),
                    work_items.c.state == "done",
                )
                .order_by(work_items.c.id)
            ).all()
        return [
            ItemResult(r.status or "failed", r.reason, r.message, r.root, r.path, r.chunks)
            for r in rows
        ]

    def lease_expiries(self) -> int:
        """Reclaims after an expired lease, over the items still in the table."""
        with self.db.read() as conn:
            value = conn.execute(select(func.sum(work_items.c.lease_expiries))).scalar_one()
        return int(value or 0)


def _run(row: Any) -> QueueRun:
    return QueueRun(
        id=row.id,
        source=row.source,
        collection=row.collection,
        full=bool(row.full_scan),
        spec=json.loads(row.spec),
        state=row.state,
        unchanged=row.unchanged,
        created_at=row.created_at,
        first_claim_at=row.first_claim_at,
    )


def run_report(queue: QueueReads, run_id: str, collection: str, unchanged: int) -> IngestReport:
    """The run's results gathered from its items, as the history's ``finish`` reads them."""
    report = IngestReport(collection=collection, roots=[], started_at="")
    placeholder = FileResult(path="", root="", document_id="", status="unchanged")
    report.files = [placeholder] * unchanged
    for result in queue.results(run_id):
        report.files.append(
            FileResult(
                path=result.path or "",
                root=result.root or "",
                document_id="",
                status=result.status,  # type: ignore[arg-type]
                reason=result.reason,
                message=result.message,
                chunks=result.chunks,
            )
        )
    return report
