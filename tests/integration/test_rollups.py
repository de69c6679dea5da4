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
    rows = [r for r in await store.day_rows(2016, old_day, old_day) if r.country == "NO"]
    assert rows and not rows[0].fresh  # ingest left it stale

    while await refresh_backlog(store, CLOCK, RETENTION, max_days=50) == 50:
        pass
    (row,) = [r for r in await store.day_rows(2016, old_day, old_day) if r.country == "NO"]
    assert row.fresh and row.n == 30
    hours = [r for r in await store.hour_rows(old_day) if r.country == "NO"]
    assert all(h.fresh for h in hours) and sum(h.n or 0 for h in hours) == 30

    # A late start into that counted day makes it stale again, and the answer stays exact.
    await ingest_batch(starts_on(old_day + timedelta(hours=3, seconds=5), 1, "NO"), store, CLOCK,
                       RETENTION, ValidationRules())
    (row,) = [r for r in await store.day_rows(2016, old_day, old_day) if r.country == "NO"]
    assert not row.fresh
    counts = await count_window(store, old_day, old_day + timedelta(days=1) - timedelta(milliseconds=1),
                                NOW, RETENTION)
    assert counts["NO"] == 31
