"""The last complete sessions of a player: their events read newest first, paired while read.

The read stops as soon as the newest `limit` complete sessions are settled (LatestSessions), so its
cost tracks the answer (and the player's open sessions in between), not the player's history. The
first page is four rows per wanted session (two are its events; the rest settle it), so a typical
player, and a whale with a session every few minutes, is one read.

Events that never pair (a bot sending only starts) settle nothing, so the read would go on to the end
of the partition: it stops after `max_rows` rows (--player-read-max-rows) and answers with the
complete sessions found so far and `truncated`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from player_sessions.domain.clock import Clock
from player_sessions.domain.errors import InvalidRequest
from player_sessions.domain.retention import retention_horizon
from player_sessions.domain.sessions import LatestSessions, Session, epoch_ms
from player_sessions.domain.validation import check_player_id
from player_sessions.store.base import SessionStore, StoredEventKey

MAX_LIMIT = 100
MAX_PAGE = 5000
DEFAULT_MAX_ROWS = 20_000


@dataclass(frozen=True)
class PlayerSessions:
    sessions: list[Session]
    truncated: bool  # the read stopped at max_rows: older events were not read, the answer may be short


async def last_sessions(
    store: SessionStore,
    clock: Clock,
    retention: timedelta,
    player_id: str,
    limit: int,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> PlayerSessions:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    check_player_id(player_id)
    # Both halves of a session must be inside the retention; older rows are read past, not paired
    # (their TTL removes them soon anyway).
    horizon = epoch_ms(retention_horizon(clock.now(), retention))
    latest = LatestSessions(player_id, limit)
    after: StoredEventKey | None = None
    page = 4 * limit + 16
    read = 0
    while True:
        asked = min(page, max_rows - read)
        rows = await store.player_events(player_id, after, asked)
        read += len(rows)
        inside = [r for r in rows if r.ts_ms >= horizon]
        latest.add(inside)
        if len(rows) < asked or len(inside) < len(rows):
            return PlayerSessions(latest.newest(), False)  # the partition, or the retention, is exhausted
        last = rows[-1]
        if latest.settled(last.ts_ms):
            return PlayerSessions(latest.newest(), False)
        if read >= max_rows:
            return PlayerSessions(latest.newest(), True)
        after = (last.ts_ms, last.session_id, last.is_start)
        page = min(page * 4, MAX_PAGE)
