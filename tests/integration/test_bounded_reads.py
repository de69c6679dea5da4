"""Reads are bounded by the answer: a player with 50,000 sessions is answered from O(tens) of rows."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from player_sessions.config import Settings
from player_sessions.domain.clock import FixedClock
from player_sessions.domain.sessions import Session
from player_sessions.services.sessions import last_sessions
from player_sessions.store.base import EventWrite
from player_sessions.store.cassandra import CassandraStore

NOW = datetime(2016, 12, 1, tzinfo=UTC)
RETENTION = timedelta(days=365)


@pytest.fixture()
async def store(cassandra_node: str, test_keyspace_name: str) -> AsyncIterator[CassandraStore]:
    settings = Settings(contact_points=cassandra_node, keyspace=f"{test_keyspace_name}_bounded")
    s = await CassandraStore.connect(settings, ensure_schema=True)
    yield s
    await s.close()


async def test_whale_with_50000_sessions_reads_only_the_rows_it_returns(store: CassandraStore) -> None:
    player = f"whale-{uuid.uuid4().hex[:8]}"
    sessions = [
        Session(uuid.uuid4(), player, "FI", NOW - timedelta(minutes=10 * i + 30),
                NOW - timedelta(minutes=10 * i + 25))
        for i in range(50_000)
    ]
    await store.put_events([
        EventWrite(player, s.session_id, is_start, ts, "FI" if is_start else None, 3600)
        for s in sessions for is_start, ts in ((True, s.start), (False, s.end))
    ], [])

    got = await last_sessions(store, FixedClock(NOW), RETENTION, player, 20)
    assert [s.session_id for s in got] == [s.session_id for s in sessions[:20]]

    # Ask Cassandra what the same reads cost: its traces say how many rows it read.
    reads: list[int] = []
    traced: list[Any] = []
    original = store._execute

    async def traced_execute(statement: Any, params: Any = None) -> list[Any]:
        if statement in (store._get_events, store._get_events_after):
            result = store._session.execute(statement, params, trace=True)
            traced.append(result.get_query_trace(max_wait_sec=10))
            return list(result)
        return await original(statement, params)

    store._execute = traced_execute  # type: ignore[method-assign]
    assert await last_sessions(store, FixedClock(NOW), RETENTION, player, 20) == got
    for trace in traced:
        reads += [int(m.group(1)) for e in trace.events
                  if (m := re.search(r"Read (\d+) live rows", e.description))]
    assert reads, [e.description for t in traced for e in t.events]
    # 20 sessions are 40 rows; settling them needs one more hour (12 rows): one page of 96 rows.
    assert len(traced) == 1 and sum(reads) <= 96, reads
