"""The durable queue's SQL on the embedded SQLite default and on a real PostgreSQL server:
claims, leases, guarded completions, the once-only finalise item, progress across workers,
concurrent claimers each getting distinct items."""

from __future__ import annotations

import threading
import time

import pytest

from ingest.db import Database
from ingest.workqueue import ItemResult, NewItem, QueueBusy, WorkItem, WorkQueue


@pytest.fixture()
def queue(database: Database) -> WorkQueue:
    """A queue on each backend (``database``: SQLite default, then PostgreSQL)."""
    return WorkQueue(database, lease_s=30)


def _open(queue: WorkQueue, run_id: str = "r1", source: str = "docs") -> None:
    queue.create_run(run_id, source, "main", full=False, spec={"paths": ["/x"]})


def _discovered(queue: WorkQueue, files: int, *, unchanged: int = 0) -> None:
    item = queue.claim("w1", kinds=("discover",))
    assert item is not None and item.kind == "discover"
    new = [NewItem("index", f"d{i}", "/x", f"f{i}.md") for i in range(files)]
    new.append(NewItem("index", "bad", "/x", "link.md", "failed", "outside_root", "refused"))
    assert queue.add_discovered(item, "w1", new, unchanged=unchanged)


def test_one_open_run_per_source(queue: WorkQueue) -> None:
    _open(queue)
    with pytest.raises(QueueBusy):
        _open(queue, "r2")
    _open(queue, "r3", source="other")  # another source is independent
    assert [r.id for r in queue.open_runs()] == ["r1", "r3"]


def test_each_item_is_claimed_once_and_finalise_waits_for_the_rest(queue: WorkQueue) -> None:
    _open(queue)
    _discovered(queue, 3, unchanged=2)
    progress = queue.progress("r1")
    assert progress is not None
    assert (progress.done, progress.total) == (3, 6)  # 2 unchanged + 1 refused, of 6
    got = [queue.claim(owner) for owner in ("w1", "w2", "w3")]
    assert sorted(i.path for i in got if i) == ["f0.md", "f1.md", "f2.md"]
    assert queue.claim("w4") is None  # finalise is not claimable yet
    for item, owner in zip(got, ("w1", "w2", "w3"), strict=True):
        assert item is not None
        assert queue.complete(item, owner, status="indexed", chunks=2)
    final = queue.claim("w2")
    assert final is not None and final.kind == "finalise"
    assert queue.claim("w1") is None
    progress = queue.progress("r1")
    assert progress is not None
    assert (progress.done, progress.total) == (6, 6)
    assert progress.counts == {"indexed": 3, "unchanged": 2, "removed": 0, "failed": 1}
    assert queue.close_run(final, "w2")
    run = queue.run("r1")
    assert run is not None and run.state == "closed"
    assert queue.depth() == 0
    _open(queue, "r2")  # the source is free again


def test_an_expired_lease_is_reclaimed_counted_and_the_old_holder_cannot_complete(
    queue: WorkQueue,
) -> None:
    queue.lease_s = 0.3
    _open(queue)
    _discovered(queue, 1)
    first = queue.claim("dead")
    assert first is not None and not first.reclaimed
    assert queue.claim("live") is None  # leased
    time.sleep(0.4)
    again = queue.claim("live")
    assert again is not None and again.id == first.id and again.reclaimed
    assert again.attempts == 2
    assert queue.lease_expiries() == 1
    assert not queue.complete(first, "dead", status="indexed")  # its lease is gone
    assert queue.complete(again, "live", status="indexed")


def test_a_heartbeat_keeps_the_lease_and_a_release_hands_items_back(queue: WorkQueue) -> None:
    queue.lease_s = 0.4
    _open(queue)
    _discovered(queue, 2)
    held = queue.claim("w1")
    assert held is not None
    for _ in range(4):
        time.sleep(0.15)
        assert queue.heartbeat("w1") == 1
    other = queue.claim("w2")
    assert other is not None and other.id != held.id  # w1's item stayed leased
    assert queue.release("w1") == 1
    back = queue.claim("w3")
    assert back is not None and back.id == held.id and not back.reclaimed
    assert queue.lease_expiries() == 0


def test_progress_has_an_eta_and_the_workers_holding_items(queue: WorkQueue) -> None:
    _open(queue)
    progress = queue.progress("r1")
    assert progress is not None and progress.total is None  # not listed yet
    _discovered(queue, 4)
    items = [queue.claim("w1"), queue.claim("w2")]
    first = items[0]
    assert first is not None
    queue.complete(first, "w1", status="indexed")
    progress = queue.progress("r1", now=time.time() + 1.0)
    assert progress is not None
    assert progress.workers == 1  # w2 still holds one
    assert progress.eta_s is not None and progress.eta_s > 0


def test_concurrent_claimers_never_get_the_same_item(queue: WorkQueue) -> None:
    _open(queue)
    _discovered(queue, 120)
    got: dict[str, list[WorkItem]] = {f"w{i}": [] for i in range(6)}

    def drain(owner: str) -> None:
        while (item := queue.claim(owner, kinds=("index",))) is not None:
            got[owner].append(item)
            assert queue.complete(item, owner, status="indexed")

    threads = [threading.Thread(target=drain, args=(owner,)) for owner in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    ids = [item.id for items in got.values() for item in items]
    assert len(ids) == 120 and len(set(ids)) == 120
    assert sum(1 for items in got.values() if items) >= 2  # the work was shared
    final = queue.claim("w0")
    assert final is not None and final.kind == "finalise"


def test_held_off_collections_are_skipped_and_a_hand_back_is_no_attempt(
    queue: WorkQueue,
) -> None:
    _open(queue)  # collection "main"
    queue.create_run("r2", "other", "side", full=False, spec={"paths": ["/y"]})
    item = queue.claim("w1", skip_collections={"main"})
    assert item is not None and item.run_id == "r2"
    assert queue.claim("w1", skip_collections={"main", "side"}) is None
    item = queue.claim("w1")
    assert item is not None and (item.run_id, item.attempts) == ("r1", 1)
    assert not queue.hand_back(item, "w2")  # only the holder hands it back
    assert queue.hand_back(item, "w1")
    again = queue.claim("w2")
    assert again is not None and again.id == item.id
    assert (again.attempts, again.reclaimed) == (1, False)


def test_a_container_s_members_are_recorded_with_its_item(queue: WorkQueue) -> None:
    _open(queue)
    _discovered(queue, 1)
    item = queue.claim("w1")
    assert item is not None and item.path == "f0.md"
    members = [
        ItemResult("indexed", None, None, "/x", "f0.md/a.txt", 3),
        ItemResult("failed", "unsupported_type", "no reader", "/x", "f0.md/b.bin", 0),
    ]
    stale = WorkItem(item.id, "r1", "index", "d0", "/x", "f0.md", 1, False)
    assert not queue.complete(stale, "w9", status="indexed", members=members)  # not its holder
    assert queue.complete(item, "w1", status="indexed", chunks=2, members=members)
    progress = queue.progress("r1")
    assert progress is not None and (progress.done, progress.total) == (4, 4)
    assert progress.counts == {"indexed": 2, "unchanged": 0, "removed": 0, "failed": 2}
    assert [(r.path, r.status) for r in queue.results("r1")] == [
        ("f0.md", "indexed"),
        ("link.md", "failed"),
        ("f0.md/a.txt", "indexed"),
        ("f0.md/b.bin", "failed"),
    ]
