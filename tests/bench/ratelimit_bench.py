"""What one rate-limit check costs: in process memory, in the SQLite file, in PostgreSQL.

    .venv/bin/python -m tests.bench.ratelimit_bench [--hits 2000]

Times ``hit()`` of the product's limiters (``service.auth.ratelimit.RateLimiter``, and
``service.auth.ratelimit_db.DatabaseRateLimiter`` on a fresh SQLite file in WAL mode and on
a throwaway PostgreSQL server on loopback) with the default spec shape (one limit) and a
two-limit spec, over 50 subjects, limits high enough that nothing is refused. Prints p50,
p95 and mean in microseconds. Last, for PostgreSQL, the throughput of 2 limiters (two
connection pools, as two replicas) x 8 threads hitting one subject.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import event, text

from ingest.db import Database
from ingest.db.migrate import check_schema
from service.auth.ratelimit import RateLimiter
from service.auth.ratelimit_db import DatabaseRateLimiter
from tests.scale_servers import PostgresServer

SPECS = ("1000000/minute", "1000000/minute;100000000/day")


def timed(hit: Callable[[str], None], hits: int) -> list[float]:
    for n in range(50):  # warm: pools, first rows
        hit(f"s{n}")
    samples = []
    for n in range(hits):
        started = time.perf_counter()
        hit(f"s{n % 50}")
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p50, p95 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.95)]
    mean = statistics.fmean(samples)
    print(f"{label:<44} p50 {p50:8.1f} us   p95 {p95:8.1f} us   mean {mean:8.1f} us")


def statements_per_hit(db: Database, spec: str) -> float:
    """SQL statements sent per hit (BEGIN/COMMIT and the pool's ping not included)."""
    sent = [0]

    def count(*_args: object) -> None:
        sent[0] += 1

    limiter = DatabaseRateLimiter(spec, "key", db)
    limiter.hit("warm")
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        for n in range(10):
            limiter.hit(f"c{n}")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return sent[0] / 10


def concurrent(url: str, folder: Path, seconds: float = 3.0) -> None:
    dbs = [Database(url, lock_dir=folder) for _ in range(2)]
    limiters = [DatabaseRateLimiter("100000000/hour", "key", db) for db in dbs]
    counts = [0] * 16
    stop = time.monotonic() + seconds

    def work(n: int) -> None:
        while time.monotonic() < stop:
            limiters[n % 2].hit("one-busy-key")
            counts[n] += 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"postgresql, 2 pools x 8 threads, one subject: {sum(counts) / seconds:8.0f} hits/s")
    for db in dbs:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=2000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="inhouse-rl-bench-"))
    for spec in SPECS:
        report(f"memory   {spec}", timed(RateLimiter(spec, "key").hit, args.hits))
    sqlite = Database(f"sqlite:///{folder / 'bench.sqlite3'}", lock_dir=folder)
    check_schema(sqlite)
    for spec in SPECS:
        limiter = DatabaseRateLimiter(spec, "key", sqlite)
        report(f"sqlite   {spec}", timed(limiter.hit, args.hits))
    sqlite.dispose()
    server = PostgresServer().start()
    try:
        pg = Database(server.url, lock_dir=folder)
        check_schema(pg)

        def select_1(_subject: str) -> None:
            with pg.read() as conn:
                conn.execute(text("SELECT 1"))

        report("postgres SELECT 1 (baseline: checkout+ping+query)", timed(select_1, args.hits))
        for spec in SPECS:
            limiter = DatabaseRateLimiter(spec, "key", pg)
            report(f"postgres {spec}", timed(limiter.hit, args.hits))
            print(f"  statements per hit: {statements_per_hit(pg, spec):.1f}")
        pg.dispose()
        concurrent(server.url, folder)
    finally:
        server.remove()


if __name__ == "__main__":
    main()
