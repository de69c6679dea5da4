"""Reads are bounded by the answer: a player with 50,000 sessions is answered from O(tens) of rows, one
with thousands of unpaired events by at most --player-read-max-rows rows; an erase reads in pages."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from player_sessions.config import Settings
from player_sessions.domain.clock import FixedClock
from player_sessions.domain.sessions import Session
from player_sessions.domain.windows import hour_floor
from player_sessions.services.erase import erase_player
from player_sessions.services.sessions import last_sessions
from player_sessions.store.base import EventWrite, StartWrite
from player_sessions.store.cassandra import CassandraStore
from player_sessions.store.config import StoreConfig
from tests.support.clock import NOW

RETENTION = timedelta(days=365)


@pytest.fixture()
async def store(cassandra_node: str, test_keyspace_name: str) -> AsyncIterator[CassandraStore]:
    settings = Settings(contact_points=cassandra_node, keyspace=f"{test_keyspace_name}_bounded")
    s = await CassandraStore.connect(StoreConfig.from_settings(settings), ensure_schema=True)
    yield s
    await s.close()


async def test_whale_with_50000_sessions_reads_only_the_rows_it_returns(store: CassandraStore) -> None:
    player = f"whale-{uuid.uuid4().hex[:8]}"
    sessions = [
        Session(
            uuid.uuid4(),
            player,
            "FI",
            NOW - timedelta(minutes=10 * i + 30),
            NOW - timedelta(minutes=10 * i + 25),
        )
        for i in range(50_000)
    ]
    await store.put_events(
        [
            EventWrite(player, s.session_id, is_start, ts, "FI" if is_start else None, 3600)
            for s in sessions
            for is_start, ts in ((True, s.start), (False, s.end))
        ],
        [],
    )

    got = (await last_sessions(store, FixedClock(NOW), RETENTION, player, 20)).sessions
    assert [s.session_id for s in got] == [s.session_id for s in sessions[:20]]

    # Ask Cassandra what the same reads cost: its traces say how many rows it read.
    reads: list[int] = []
    traced: list[Any] = []
    original = store._execute

    async def traced_execute(statement: Any, params: Any = None) -> list[Any]:
        if statement in (store._cql.get_events, store._cql.get_events_after):
            result = store._session.execute(statement, params, trace=True)
            traced.append(result.get_query_trace(max_wait_sec=10))
            return list(result)
        return await original(statement, params)

    store._execute = traced_execute  # type: ignore[method-assign]
    assert (await last_sessions(store, FixedClock(NOW), RETENTION, player, 20)).sessions == got
    for trace in traced:
        reads += [
            int(m.group(1)) for e in trace.events if (m := re.search(r"Read (\d+) live rows", e.description))
        ]
    assert reads, [e.description for t in traced for e in t.events]
    # 20 sessions are 40 rows; settling them needs one more hour (12 rows): one page of 96 rows.
    assert len(traced) == 1 and sum(reads) <= 96, reads


def unpaired_starts(player: str, count: int, newest: datetime) -> list[EventWrite]:
    """A bot's starts, one a minute, that never end: they settle no session."""
    return [
        EventWrite(player, uuid.uuid4(), True, newest - timedelta(minutes=i), "FI", 3600)
        for i in range(count)
    ]


def complete(player: str, started: datetime) -> tuple[Session, list[EventWrite]]:
    session = Session(uuid.uuid4(), player, "SE", started, started + timedelta(minutes=5))
    return session, [
        EventWrite(player, session.session_id, True, session.start, "SE", 3600),
        EventWrite(player, session.session_id, False, session.end, None, 3600),
    ]


async def test_unpaired_events_stop_the_read_at_the_cap_with_a_truncated_answer(
    store: CassandraStore,
) -> None:
    player = f"bot-{uuid.uuid4().hex[:8]}"
    newer, newer_rows = complete(player, NOW - timedelta(minutes=10))
    older, older_rows = complete(player, NOW - timedelta(days=5))  # below 3,000 unpaired starts
    await store.put_events(
        [*newer_rows, *unpaired_starts(player, 3000, NOW - timedelta(minutes=20)), *older_rows], []
    )
    rows_read: list[int] = []
    original = store.player_events

    async def counted(player_id: str, before: Any, limit: int) -> Any:
        rows = await original(player_id, before, limit)
        rows_read.append(len(rows))
        return rows

    store.player_events = counted  # type: ignore[method-assign]
    capped = await last_sessions(store, FixedClock(NOW), RETENTION, player, 20, max_rows=1000)
    assert capped.truncated
    assert [s.session_id for s in capped.sessions] == [newer.session_id]
    assert sum(rows_read) == 1000

    rows_read.clear()
    whole = await last_sessions(store, FixedClock(NOW), RETENTION, player, 20, max_rows=5000)
    assert not whole.truncated
    assert [s.session_id for s in whole.sessions] == [newer.session_id, older.session_id]
    assert sum(rows_read) == 3004

    # A cap that the settled answer never reaches changes nothing.
    one = await last_sessions(store, FixedClock(NOW), RETENTION, player, 1, max_rows=1000)
    assert not one.truncated and [s.session_id for s in one.sessions] == [newer.session_id]


async def test_erase_pages_through_a_large_partition(store: CassandraStore) -> None:
    player = f"bot-{uuid.uuid4().hex[:8]}"
    starts = unpaired_starts(player, 2400, NOW - timedelta(minutes=1))
    sessions = [complete(player, NOW - timedelta(days=2, minutes=7 * i)) for i in range(300)]
    start_rows = [
        StartWrite(w.country or "", hour_floor(w.ts), w.ts, w.session_id, w.player_id, w.ttl)
        for w in [*starts, *(r for _, rows in sessions for r in rows)]
        if w.is_start
    ]
    await store.put_events([*starts, *(r for _, rows in sessions for r in rows)], start_rows)
    hours = sorted({w.hour for w in start_rows})
    assert sum((await store.count_starts(["FI", "SE"], hours)).values()) == 2700

    pages: list[int] = []
    original = store.player_events

    async def counted(player_id: str, before: Any, limit: int) -> Any:
        rows = await original(player_id, before, limit)
        pages.append(len(rows))
        return rows

    store.player_events = counted  # type: ignore[method-assign]
    erased = await erase_player(store, FixedClock(NOW), RETENTION, player, page_rows=500)
    assert pages == [500] * 6 + [0]  # 3,000 events, never more than a page at once
    assert erased.removed == {"player_events": 3000, "starts_by_country_hour": 2700, "starts_by_minute": 2700}
    assert erased.sessions == 2700
    assert await original(player, None, 10) == []
    assert await store.count_starts(["FI", "SE"], hours) == {}
