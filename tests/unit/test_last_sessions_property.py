"""The paged, early-stopping read of services.sessions.last_sessions gives exactly what pairing every
stored event of the player at once gives, whatever the events and however the pages fall."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from player_sessions.domain.clock import FixedClock
from player_sessions.domain.sessions import (
    MAX_END_BEFORE_START,
    Session,
    StoredEvent,
    from_epoch_ms,
)
from player_sessions.services.sessions import last_sessions
from player_sessions.store.base import StoredEventKey
from tests.support import clock

NOW = clock.NOW + timedelta(hours=12)
RETENTION = timedelta(days=2)
SESSION_IDS = [uuid.UUID(int=i + 1) for i in range(12)]


def _order(e: StoredEvent) -> tuple[int, bytes, bool]:
    return (e.ts_ms, e.session_id, e.is_start)


class PlayerEventsStore:
    """player_events of one player, read like Cassandra does: (ts, session_id, is_start) descending."""

    def __init__(self, events: list[StoredEvent]) -> None:
        self.rows = sorted({_order(e): e for e in events}.values(), key=_order, reverse=True)
        self.reads = 0

    async def player_events(
        self, player_id: str, before: StoredEventKey | None, limit: int
    ) -> list[StoredEvent]:
        self.reads += 1
        rows = self.rows if before is None else [r for r in self.rows if _order(r) < before]
        return rows[:limit]


def brute_force(events: list[StoredEvent], limit: int) -> list[Session]:
    """Every stored event at once: the newest start and the newest end of each session, inside the
    retention, an end at most MAX_END_BEFORE_START before its start."""
    horizon = NOW - RETENTION
    starts: dict[bytes, tuple[datetime, str | None]] = {}
    ends: dict[bytes, datetime] = {}
    for e in events:
        ts = from_epoch_ms(e.ts_ms)
        if ts < horizon:
            continue
        if e.is_start and (e.session_id not in starts or ts > starts[e.session_id][0]):
            starts[e.session_id] = (ts, e.country)
        if not e.is_start and (e.session_id not in ends or ts > ends[e.session_id]):
            ends[e.session_id] = ts
    sessions = [
        Session(uuid.UUID(bytes=sid), "p1", country, start, ends[sid])
        for sid, (start, country) in starts.items()
        if sid in ends and ends[sid] >= start - MAX_END_BEFORE_START
    ]
    # Newest start first, ties by the session id's text: the order the API promises.
    return sorted(sessions, key=lambda s: (-s.start.timestamp(), str(s.session_id)))[:limit]


stored_events = st.lists(
    st.builds(
        StoredEvent.of,
        ts=st.integers(min_value=-3 * 24 * 60, max_value=0).map(lambda m: NOW + timedelta(minutes=m)),
        session_id=st.sampled_from(SESSION_IDS),
        is_start=st.booleans(),
        country=st.sampled_from(["FI", "SE"]),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(events=stored_events, limit=st.integers(min_value=1, max_value=6))
async def test_paged_read_equals_pairing_everything(events: list[StoredEvent], limit: int) -> None:
    store: Any = PlayerEventsStore(events)
    got = (await last_sessions(store, FixedClock(NOW), RETENTION, "p1", limit)).sessions
    assert got == brute_force(store.rows, limit)


async def test_a_long_history_is_not_read_to_answer_the_newest_sessions() -> None:
    events = []
    for i in range(2000):  # a 1-minute session every 4 minutes, further back than the retention
        start = NOW - timedelta(minutes=4 * i + 1)
        sid = uuid.UUID(int=10_000 + i)
        events += [
            StoredEvent.of(start, sid, True, "FI"),
            StoredEvent.of(start + timedelta(minutes=1), sid, False, None),
        ]
    store: Any = PlayerEventsStore(events)
    got = (await last_sessions(store, FixedClock(NOW), RETENTION, "p1", 20)).sessions
    assert got == brute_force(store.rows, 20)
    # 20 sessions (40 rows), then one more hour (MAX_END_BEFORE_START) of events to settle them:
    # one read of 96 rows, not 4,000 rows.
    assert store.reads == 1


@settings(max_examples=300, deadline=None)
@given(
    events=stored_events,
    limit=st.integers(min_value=1, max_value=6),
    max_rows=st.integers(min_value=1, max_value=40),
)
async def test_a_capped_read_pairs_exactly_the_rows_it_read(
    events: list[StoredEvent], limit: int, max_rows: int
) -> None:
    store: Any = PlayerEventsStore(events)
    seen: list[int] = []
    read = store.player_events

    async def counted(player_id: str, before: StoredEventKey | None, n: int) -> list[StoredEvent]:
        rows: list[StoredEvent] = await read(player_id, before, n)
        seen.append(len(rows))
        return rows

    store.player_events = counted
    got = await last_sessions(store, FixedClock(NOW), RETENTION, "p1", limit, max_rows)
    assert sum(seen) <= max_rows
    if got.truncated:
        assert sum(seen) == max_rows
        assert got.sessions == brute_force(store.rows[:max_rows], limit)
    else:
        assert got.sessions == brute_force(store.rows, limit)
