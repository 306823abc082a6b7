"""Rate limits shared by API replicas through PostgreSQL: two real servers over sockets
share one budget, concurrent hits admit exactly the limit, the sliding window and pruning,
and the fallback to in-process counting while the database is unavailable."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from ingest.db import Database
from ingest.db.migrate import check_schema
from ingest.db.schema import rate_limit_hits
from service.api.main import create_app
from service.auth import ratelimit_db
from service.auth.keys import KeyStore
from service.auth.ratelimit import RateLimiter, open_limiter
from service.auth.ratelimit_db import DatabaseRateLimiter, retry_after, weighted
from service.errors import RateLimited
from service.metrics import ServiceMetrics, recording
from service.settings import ServiceSettings
from tests.pg_support import PgServer
from tests.service.api_support import LiveService

MINUTE_START = 1_800_000_000  # a window edge (a multiple of 60): elapsed starts at 0


def test_sliding_weights_and_retry_after() -> None:
    assert weighted(10, 3, 0.25) == 10.5
    # the current window is full: wait for its end, then for its weight to fall to 2 of 3
    assert retry_after(0, 3, 0.5, amount=3, length=60) == 30 + 20
    # room in the current window: wait for the previous one's weight to fall from 4 x 0.5 to 1
    assert retry_after(4, 1, 0.5, amount=3, length=60) == 15
    assert retry_after(0, 1, 0.9, amount=1, length=60) == 66  # one a minute: the next one ends
    assert retry_after(1, 0, 0.999, amount=1, length=60) == 1  # never under a second


def test_sliding_window_counts_refusals_as_nothing_and_prunes(database: Database) -> None:
    """Portable SQL: the same limiter on both backends (the app uses it on PostgreSQL)."""
    now = [float(MINUTE_START)]
    limiter = DatabaseRateLimiter("4/minute", "key", database, clock=lambda: now[0])
    for _ in range(4):
        limiter.hit("k1")
    with pytest.raises(RateLimited) as refused:
        limiter.hit("k1")
    assert refused.value.detail["retry_after"] == 75  # 60 s to the edge, then 3/4 of 4 left
    assert "rate limit of 4 per 1 minute exceeded" in str(refused.value)
    assert limiter.exceeded("k1") == 75 and limiter.exceeded("k2") is None
    limiter.hit("k2")  # another subject has its own budget

    now[0] += 90  # half way into the next minute: the 4 earlier hits weigh 2
    limiter.hit("k1")
    limiter.hit("k1")
    with pytest.raises(RateLimited) as again:
        limiter.hit("k1")
    assert again.value.detail["retry_after"] == 15
    with database.read() as conn:
        rows = conn.execute(
            select(rate_limit_hits.c.window_start, rate_limit_hits.c.hits)
            .where(rate_limit_hits.c.subject == "k1")
            .order_by(rate_limit_hits.c.window_start)
        ).all()
    assert [tuple(r) for r in rows] == [(MINUTE_START, 4), (MINUTE_START + 60, 2)]  # no refusal

    now[0] += 3600  # an hour on: a new process prunes every expired window
    DatabaseRateLimiter("4/minute", "key", database, clock=lambda: now[0]).hit("k3")
    with database.read() as conn:
        left = conn.execute(select(rate_limit_hits.c.subject)).scalars().all()
    assert left == ["k3"]


def test_concurrent_hits_from_two_replicas_admit_exactly_the_limit(
    pg_url: str, tmp_path: Path
) -> None:
    dbs = [Database(pg_url, lock_dir=tmp_path) for _ in range(2)]  # two pools, two "replicas"
    check_schema(dbs[0])
    limiters = [DatabaseRateLimiter("30/hour", "key", db) for db in dbs]
    admitted: list[int] = []
    start = threading.Barrier(16)

    def client(n: int) -> None:
        limiter = limiters[n % 2]
        start.wait()
        for _ in range(5):
            try:
                limiter.hit("busy")
                admitted.append(1)
            except RateLimited:
                pass

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(admitted) == 30  # 80 tries, exactly the limit admitted
        with dbs[0].read() as conn:
            assert conn.execute(select(func.sum(rate_limit_hits.c.hits))).scalar() == 30
    finally:
        for db in dbs:
            db.dispose()


def test_two_servers_share_the_limit_on_postgresql_not_on_sqlite(
    db_url: str | None, tmp_path: Path
) -> None:
    """Two uvicorn servers on one data dir and database: with PostgreSQL the 4th request
    across both is refused, and a restarted replica remembers; with SQLite (per process)
    each server allows the full limit."""
    store = KeyStore(tmp_path)
    key, other = (store.create(n, ["query"], ["*"]).key for n in ("bot", "other"))
    store.close()
    settings = ServiceSettings(
        data_dir=tmp_path,
        auth="keys",
        demo_model={"use": "never"},
        embedded_worker=False,
        security={"rate_limit": "3/hour", "auth_failure_limit": "2/hour"},
    )
    shared = db_url is not None

    def me(url: str, secret: str) -> httpx.Response:
        return httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {secret}"})

    with LiveService(create_app(settings)) as one, LiveService(create_app(settings)) as two:
        statuses = [me(live.url, key).status_code for live in (one, two, one, two, one, two)]
        refused = me(two.url, key)
        assert me(one.url, other).status_code == 200  # another key: its own budget
        failures = [me(live.url, key[:-2] + "xx").status_code for live in (one, two, one)]
    if shared:
        assert statuses == [200, 200, 200, 429, 429, 429]
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1200 <= int(refused.headers["retry-after"]) <= 4800  # 1/3 h after the hour
        assert failures == [401, 401, 429]  # guessing is slowed across replicas too
        with LiveService(create_app(settings)) as restarted:  # counters outlive a replica
            assert me(restarted.url, key).status_code == 429
    else:
        assert statuses == [200] * 6 and refused.status_code == 429  # 3 per server
        assert failures == [401, 401, 401]


def test_open_limiter_picks_the_database_only_for_postgresql(
    database: Database, db_url: str | None
) -> None:
    limiter = open_limiter("5/minute", "key", database)
    assert isinstance(limiter, DatabaseRateLimiter if db_url else RateLimiter)
    assert isinstance(open_limiter("5/minute", "key", None), RateLimiter)
    assert not open_limiter("", "key", database).enabled


def _database_name(url: str) -> str:
    name = make_url(url).database
    assert name is not None
    return name


def test_unavailable_database_falls_back_to_local_counting(
    pg_server: PgServer,
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real outage (the database refuses connections): hits count in process, logged once
    and counted in inhouse_rate_limit_fallbacks_total; the database is used again after."""
    db = Database(pg_url, lock_dir=tmp_path)
    check_schema(db)
    name = _database_name(pg_url)
    limiter = DatabaseRateLimiter("2/hour", "key", db)
    metrics = ServiceMetrics()
    monkeypatch.setattr(ratelimit_db, "RETRY_DB_S", 0.0)  # try the database on every hit

    def fallbacks() -> float | None:
        return metrics.registry.get_sample_value(
            "inhouse_rate_limit_fallbacks_total", {"limit": "key"}
        )

    try:
        with recording(metrics):
            limiter.hit("k")  # counted in the database
            pg_server.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            pg_server.admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            caplog.set_level(logging.INFO, logger=ratelimit_db.__name__)
            limiter.hit("k")  # local counters start empty: 2 more fit
            limiter.hit("k")
            with pytest.raises(RateLimited):
                limiter.hit("k")
            assert limiter.exceeded("k") is not None
            assert fallbacks() == 4
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1 and "counting in this process only" in warnings[0].message
            assert "unavailable" in warnings[0].getMessage()

            pg_server.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            limiter.hit("k")  # the database again: its count was 1
            with pytest.raises(RateLimited):
                limiter.hit("k")
            assert fallbacks() == 4
            assert "the database is back" in caplog.text
    finally:
        pg_server.admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        db.dispose()


def test_each_limit_of_a_spec_counts_in_its_own_row(database: Database) -> None:
    limiter = DatabaseRateLimiter("100/minute;1000/day", "key", database)
    for _ in range(20):
        limiter.hit("k")
    with database.read() as conn:
        rows = conn.execute(select(rate_limit_hits.c.name, rate_limit_hits.c.hits)).all()
    assert sorted(tuple(r) for r in rows) == [("key/100/60", 20), ("key/1000/86400", 20)]
