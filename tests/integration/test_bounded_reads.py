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
from player_sessions.store.base import SessionWrite
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
    await store.put_sessions([SessionWrite(s, 3600) for s in sessions])

    got = await last_sessions(store, FixedClock(NOW), RETENTION, player, 20)
    assert [s.session_id for s in got] == [s.session_id for s in sessions[:20]]

    # Ask Cassandra what the same read cost: its trace says how many rows it read.
    statement: Any = store._get_sessions.bind((player, NOW - RETENTION, 20))
    result = store._session.execute(statement, trace=True)
    trace = result.get_query_trace(max_wait_sec=10)
    reads = [int(m.group(1)) for e in trace.events
             if (m := re.search(r"Read (\d+) live rows", e.description))]
    assert reads, [e.description for e in trace.events]
    assert sum(reads) <= 40, reads
