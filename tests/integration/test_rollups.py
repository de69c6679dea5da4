"""Rollups: ingest marks them stale, recounts make them fresh and exact, the backlog pass heals old days."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from player_sessions.config import Settings
from player_sessions.domain.clock import FixedClock
from player_sessions.domain.validation import ValidationRules
from player_sessions.services.counts import count_window, refresh_backlog
from player_sessions.services.ingest import ingest_batch
from player_sessions.store.cassandra import CassandraStore

NOW = datetime(2016, 12, 1, tzinfo=UTC)
RETENTION = timedelta(days=365)
CLOCK = FixedClock(NOW)


@pytest.fixture()
async def store(cassandra_node: str, test_keyspace_name: str) -> AsyncIterator[CassandraStore]:
    settings = Settings(contact_points=cassandra_node, keyspace=f"{test_keyspace_name}_rollups")
    s = await CassandraStore.connect(settings, ensure_schema=True)
    yield s
    await s.close()


def starts_on(day: datetime, n: int, country: str) -> list[object]:
    player = uuid.uuid4().hex
    return [{"event": "start", "player_id": player, "session_id": str(uuid.uuid4()), "country": country,
             "ts": (day + timedelta(minutes=37 * i)).isoformat()} for i in range(n)]


async def test_backlog_pass_makes_old_days_fresh_and_exact(store: CassandraStore) -> None:
    old_day = datetime(2016, 3, 10, tzinfo=UTC)
    await ingest_batch(starts_on(old_day, 30, "NO"), store, CLOCK, RETENTION, ValidationRules())
    rows = await store.day_rows(2016, old_day, old_day)
    assert rows and not rows[0].fresh  # ingest left it stale

    while await refresh_backlog(store, CLOCK, RETENTION, max_days=50) == 50:
        pass
    (row,) = await store.day_rows(2016, old_day, old_day)
    assert row.fresh and row.counts == {"NO": 30}
    hours = await store.hour_rows(old_day)
    assert len(hours) == 18 and all(h.fresh and h.countries == {"NO"} for h in hours)
    assert sum((h.counts or {}).get("NO", 0) for h in hours) == 30

    # A late start into that counted day makes it stale again, and the answer stays exact.
    await ingest_batch(starts_on(old_day + timedelta(hours=3, seconds=5), 1, "NO"), store, CLOCK,
                       RETENTION, ValidationRules())
    (row,) = await store.day_rows(2016, old_day, old_day)
    assert not row.fresh
    counts = await count_window(store, old_day, old_day + timedelta(days=1) - timedelta(milliseconds=1),
                                NOW, RETENTION)
    assert counts["NO"] == 31


async def test_windows_with_edges_inside_minutes_count_exactly_while_minutes_go_stale_and_fresh(
        store: CassandraStore) -> None:
    """Windows whose edges cut minutes: whole minutes come from minute rollups (stale ones recounted),
    the cut minutes from raw rows. Every answer equals the starts counted one by one."""
    import random

    rng = random.Random(7)
    base = datetime(2016, 11, 30, 9, tzinfo=UTC)
    starts: list[tuple[str, datetime]] = []

    async def add(n: int) -> None:
        batch = []
        for _ in range(n):
            country = rng.choice(["FI", "SE", "NO"])
            ts = base + timedelta(milliseconds=rng.randrange(3 * 3600 * 1000))
            starts.append((country, ts))
            batch.append({"event": "start", "player_id": uuid.uuid4().hex, "session_id": str(uuid.uuid4()),
                          "country": country, "ts": ts.isoformat(timespec="milliseconds")})
        result = await ingest_batch(batch, store, CLOCK, RETENTION, ValidationRules())
        assert result.stored == n

    async def check(rounds: int) -> None:
        for _ in range(rounds):
            lo = base + timedelta(milliseconds=rng.randrange(3 * 3600 * 1000))
            hi = min(lo + timedelta(milliseconds=rng.choice([59_000, 61_000, 3_600_000, 7_000_000])
                                    * rng.random()), base + timedelta(hours=3))
            got = await count_window(store, lo, hi, NOW, RETENTION)
            want: dict[str, int] = {}
            for country, ts in starts:
                if lo <= ts <= hi:
                    want[country] = want.get(country, 0) + 1
            assert dict(+got) == want, (lo, hi)

    await add(400)
    await check(15)  # minutes stale: recounted, then fresh
    await check(15)
    await add(50)  # late starts make some minutes (and hours) stale again
    await check(15)
