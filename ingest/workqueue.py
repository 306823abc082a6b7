"""The durable ingest queue: one row per unit of work, claimed with a lease, in the database.

A run of a source is a ``queue_runs`` row plus ``work_items``: first one ``discover`` item
(whoever claims it lists the files and classifies them against the manifest), which adds one
``index`` item per file to (re)index, one ``remove`` item per vanished document and one
``finalise`` item. ``finalise`` is claimable only once every other item of its run is done,
so exactly one worker finalises each run (settles the lexical generation marker, writes the
run's counts), whichever host finishes last. The results of a container's members (archive
members, e-mail attachments) are ``member`` items, written done with their container's
completion, so the run's counts include them as an in-process run's do.

**Claims and leases.** A claim is one ``UPDATE ... WHERE id = (SELECT ... LIMIT 1)
RETURNING``: on PostgreSQL the inner select takes ``FOR UPDATE SKIP LOCKED``, so concurrent
workers never wait on each other's rows; on SQLite it runs in a ``BEGIN IMMEDIATE``
transaction (``ingest.db.Database.write``), under the database's one write lock, which makes
it just as atomic for the embedded default. Each claim
carries ``lease_until``; the holder renews all its leases with one ``UPDATE`` per heartbeat.
An item whose lease has expired (its worker was killed with -9, or its host vanished) is
claimable again by any worker, and the reclaim is counted (``lease_expiries``). Completions
are guarded by the owner, so a worker that lost its lease cannot overwrite the new holder's
result; redoing a file is harmless because the per-document write order and the
deterministic chunk ids of ``ingest.pipeline`` make the index converge.

**Why the database and not procrastinate or Celery.** No extra broker to run, monitor and
back up: the queue, the manifest and the run history live in one database, so one
``pg_dump`` captures a consistent state, and a database restart loses no queued work
(committed rows). The same code runs on the embedded SQLite default, where a broker would
be one more daemon for a single-machine install. The load is tiny for a database (one claim
and one completion per file, a heartbeat per worker every few seconds).

Times are epoch seconds from the workers' clocks: keep hosts NTP-synced; a lease of a minute
tolerates seconds of skew.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import and_, case, delete, exists, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from ingest.db.engine import Database
from ingest.db.schema import queue_runs, work_items
from ingest.queue_reads import FILE_KINDS, QueueReads, run_report
from ingest.queue_records import (
    ItemResult,
    NewItem,
    QueueBusy,
    QueueRun,
    RunProgress,
    WorkItem,
    new_owner,
)

__all__ = [
    "FILE_KINDS",
    "ItemResult",
    "NewItem",
    "QueueBusy",
    "QueueReads",
    "QueueRun",
    "RunProgress",
    "WorkItem",
    "WorkQueue",
    "new_owner",
    "run_report",
]

KINDS = ("discover", "index", "remove", "finalise")
MAX_ATTEMPTS = 5
"""Claims of one file before it is given up as failed (``worker_lost``): a file that kills
every worker that reads it must not circle the queue forever."""


class WorkQueue(QueueReads):
    """The queue's SQL; every method is one short transaction (reads: ``QueueReads``)."""

    def __init__(self, db: Database, *, lease_s: float = 60.0) -> None:
        """``db``: the shared database (its schema holds the tables: migration 0002)."""
        super().__init__(db)
        self.lease_s = lease_s
        self._pg = db.dialect == "postgresql"

    # -- runs ------------------------------------------------------------------------------
    def create_run(
        self, run_id: str, source: str, collection: str, *, full: bool, spec: dict[str, Any]
    ) -> None:
        """Open a run with its ``discover`` item; ``QueueBusy`` if the source has one open."""
        now = time.time()
        try:
            with self.db.write() as conn:
                conn.execute(
                    insert(queue_runs).values(
                        id=run_id,
                        source=source,
                        collection=collection,
                        full_scan=full,
                        spec=json.dumps(spec),
                        state="open",
                        unchanged=0,
                        created_at=now,
                    )
                )
                conn.execute(
                    insert(work_items).values(
                        run_id=run_id, kind="discover", state="queued", attempts=0
                    )
                )
        except IntegrityError:
            raise QueueBusy(f"source {source!r} already has a queued run") from None

    # -- claims ----------------------------------------------------------------------------
    def claim(
        self,
        owner: str,
        *,
        run_id: str | None = None,
        kinds: Sequence[str] = KINDS,
        skip_collections: Collection[str] = (),
    ) -> WorkItem | None:
        """Take the oldest claimable item (optionally of one run and of some kinds; none of
        a run writing one of ``skip_collections``)."""
        now = time.time()
        items = work_items
        other = work_items.alias("other")
        unfinished_siblings = exists().where(
            other.c.run_id == items.c.run_id,
            other.c.kind != "finalise",
            other.c.state != "done",
        )
        claimable = or_(
            items.c.state == "queued",
            and_(items.c.state == "claimed", items.c.lease_until < now),
        )
        candidate = (
            select(items.c.id)
            .where(
                claimable,
                items.c.kind.in_(list(kinds)),
                or_(items.c.kind != "finalise", ~unfinished_siblings),
            )
            .order_by(items.c.id)
            .limit(1)
        )
        if run_id is not None:
            candidate = candidate.where(items.c.run_id == run_id)
        if skip_collections:
            held_off = select(queue_runs.c.id).where(
                queue_runs.c.collection.in_(list(skip_collections))
            )
            candidate = candidate.where(items.c.run_id.not_in(held_off))
        if self._pg:
            candidate = candidate.with_for_update(skip_locked=True, of=items)
        statement = (
            update(items)
            .where(items.c.id == candidate.scalar_subquery())
            .values(
                state="claimed",
                prev_owner=case((items.c.state == "claimed", items.c.owner), else_=None),
                lease_expiries=items.c.lease_expiries
                + case((items.c.state == "claimed", 1), else_=0),
                owner=owner,
                lease_until=now + self.lease_s,
                attempts=items.c.attempts + 1,
                claimed_at=now,
            )
            .returning(
                items.c.id,
                items.c.run_id,
                items.c.kind,
                items.c.doc_id,
                items.c.root,
                items.c.path,
                items.c.attempts,
                items.c.prev_owner,
            )
        )
        with self.db.write() as conn:
            row = conn.execute(statement).first()
            if row is None:
                return None
            conn.execute(
                update(queue_runs)
                .where(queue_runs.c.id == row.run_id, queue_runs.c.first_claim_at.is_(None))
                .values(first_claim_at=now)
            )
        return WorkItem(
            id=row.id,
            run_id=row.run_id,
            kind=row.kind,
            doc_id=row.doc_id,
            root=row.root,
            path=row.path,
            attempts=row.attempts,
            reclaimed=row.prev_owner is not None,
        )

    def heartbeat(self, owner: str) -> int:
        """Renew every lease ``owner`` holds; returns how many it still holds."""
        with self.db.write() as conn:
            result = conn.execute(
                update(work_items)
                .where(_held_by(owner))
                .values(lease_until=time.time() + self.lease_s)
            )
        return int(result.rowcount or 0)

    def release(self, owner: str, item_ids: Iterable[int] | None = None) -> int:
        """Hand items back unfinished (a graceful stop): queued again, not counted as expired."""
        condition = _held_by(owner)
        if item_ids is not None:
            condition = and_(condition, work_items.c.id.in_(list(item_ids)))
        with self.db.write() as conn:
            result = conn.execute(
                update(work_items)
                .where(condition)
                .values(state="queued", owner=None, lease_until=None, attempts=0)
            )
        return int(result.rowcount or 0)

    def hand_back(self, item: WorkItem, owner: str) -> bool:
        """Queue a claimed item again untouched (its collection is held off): the claim
        does not count as an attempt. False if ``owner`` no longer holds it."""
        with self.db.write() as conn:
            result = conn.execute(
                update(work_items)
                .where(work_items.c.id == item.id, _held_by(owner))
                .values(
                    state="queued",
                    owner=None,
                    lease_until=None,
                    attempts=work_items.c.attempts - 1,
                )
            )
        return bool(result.rowcount)

    def complete(
        self,
        item: WorkItem,
        owner: str,
        *,
        status: str | None = None,
        reason: str | None = None,
        message: str | None = None,
        chunks: int = 0,
        members: Sequence[ItemResult] = (),
        conn: Connection | None = None,
    ) -> bool:
        """Mark ``item`` done with its result, and record its ``members`` (a container's) as
        done ``member`` items in the same transaction; False if ``owner`` no longer holds it
        (then nothing is written)."""
        statement = (
            update(work_items)
            .where(work_items.c.id == item.id, _held_by(owner))
            .values(
                state="done",
                status=status,
                reason=reason,
                message=message,
                chunks=chunks,
                lease_until=None,
                done_at=time.time(),
            )
        )

        def apply(conn: Connection) -> bool:
            if not conn.execute(statement).rowcount:
                return False
            if members:
                _record_members(conn, item, members)
            return True

        if conn is not None:
            return apply(conn)
        with self.db.write() as own:
            return apply(own)

    def add_discovered(
        self, item: WorkItem, owner: str, items: Sequence[NewItem], *, unchanged: int
    ) -> bool:
        """Complete a ``discover`` item by adding its run's items and a ``finalise`` item, in
        one transaction; False (nothing added) if ``owner`` lost the item meanwhile."""
        rows: list[dict[str, Any]] = [
            {
                "run_id": item.run_id,
                "kind": new.kind,
                "doc_id": new.doc_id,
                "root": new.root,
                "path": new.path,
                "state": "done" if new.status else "queued",
                "status": new.status,
                "reason": new.reason,
                "message": new.message,
                "attempts": 0,
                "lease_expiries": 0,
                "chunks": 0,
            }
            for new in items
        ]
        with self.db.write() as conn:
            if not self.complete(item, owner, conn=conn):
                return False
            if rows:
                conn.execute(insert(work_items), rows)
            conn.execute(
                insert(work_items).values(
                    run_id=item.run_id, kind="finalise", state="queued", attempts=0
                )
            )
            conn.execute(
                update(queue_runs).where(queue_runs.c.id == item.run_id).values(unchanged=unchanged)
            )
        return True

    def close_run(self, item: WorkItem, owner: str) -> bool:
        """Complete a ``finalise`` item: the run is closed and its items deleted (their
        results are in the run history by now). False if ``owner`` lost the item."""
        with self.db.write() as conn:
            if not self.complete(item, owner, conn=conn):
                return False
            conn.execute(
                update(queue_runs)
                .where(queue_runs.c.id == item.run_id)
                .values(state="closed", closed_at=time.time())
            )
            conn.execute(delete(work_items).where(work_items.c.run_id == item.run_id))
        return True

    def abort_run(self, run_id: str) -> None:
        """Close a run that failed as a whole (e.g. its root vanished), dropping its items."""
        with self.db.write() as conn:
            conn.execute(
                update(queue_runs)
                .where(queue_runs.c.id == run_id)
                .values(state="closed", closed_at=time.time())
            )
            conn.execute(delete(work_items).where(work_items.c.run_id == run_id))


def _record_members(conn: Connection, item: WorkItem, members: Sequence[ItemResult]) -> None:
    """``members`` of the container ``item`` as done ``member`` items of its run (once: an
    attempt that lost its item writes none, and a done item is never claimed again)."""
    now = time.time()
    conn.execute(
        insert(work_items),
        [
            {"run_id": item.run_id, "kind": "member", "root": member.root, "path": member.path,
             "state": "done", "status": member.status, "reason": member.reason,
             "message": member.message, "attempts": 0, "lease_expiries": 0,
             "chunks": member.chunks, "done_at": now}
            for member in members
        ],
    )  # fmt: skip


def _held_by(owner: str) -> ColumnElement[bool]:
    """Items ``owner`` has claimed and still holds (its lease was not taken over)."""
    return and_(work_items.c.owner == owner, work_items.c.state == "claimed")
