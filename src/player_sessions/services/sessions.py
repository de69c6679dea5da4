"""The last complete sessions of a player: one bounded read, newest start first."""

from __future__ import annotations

from datetime import timedelta

from player_sessions.domain.clock import Clock
from player_sessions.domain.errors import InvalidRequest
from player_sessions.domain.retention import retention_horizon
from player_sessions.domain.sessions import Session, newest_first
from player_sessions.domain.validation import check_player_id
from player_sessions.store.base import SessionStore

MAX_LIMIT = 100


async def last_sessions(store: SessionStore, clock: Clock, retention: timedelta, player_id: str,
                        limit: int) -> list[Session]:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    check_player_id(player_id)
    horizon = retention_horizon(clock.now(), retention)
    rows = await store.last_sessions(player_id, horizon, limit)
    # The read is bounded by `limit` rows; an end before the horizon (clock skew) is out of retention.
    return newest_first((s for s in rows if s.end >= horizon), limit)
