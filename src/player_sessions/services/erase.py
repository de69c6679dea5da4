"""Erase a player: remove their events and sessions from every table, so nothing of theirs can be
returned or counted any more.

1. Page through the player's partition of `player_events` (every event, with each start's ts and
   country), `ERASE_PAGE_ROWS` rows at a time, so a player with a million events costs a page of
   rows in memory (and the distinct session ids and touched minutes it counts), not the partition.
2. For each page, delete its raw start rows of starts_by_country_hour and starts_by_minute (the rows
   every count is made from).
3. Mark the minute, hour and day rollups that lost a start stale, with a new `touched` token, as
   ingest does: the deletions are acknowledged before the token is written, so a recount that reads the
   new token counts without the deleted rows, and one that read an older token is seen as stale
   (the rollups package). The counts drop by exactly the player's starts at the next query.
4. Delete the player's `player_events` partition last, so an erase that failed half-way can simply be
   retried: it finds everything again.

Every step is idempotent. Events of the player that arrive afterwards are stored again: stop sending
them first. Rows of `country_hours` are left: they may be shared with other players and an hour
without starts only costs pagination one empty read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from player_sessions import metrics
from player_sessions.domain.clock import Clock
from player_sessions.domain.sessions import from_epoch_ms
from player_sessions.domain.validation import check_player_id
from player_sessions.domain.windows import HOUR, hour_floor, minute_floor
from player_sessions.rollups import count_touches, write_marks
from player_sessions.store.base import SessionStore, StoredEventKey

ERASE_PAGE_ROWS = 5000


@dataclass(frozen=True)
class ErasedPlayer:
    player_id: str
    removed: dict[str, int]  # rows deleted per table
    sessions: int  # distinct sessions (complete or not) among the deleted events
    rollups_marked_stale: int  # (country, hour) rollups whose count will be recounted


async def erase_player(
    store: SessionStore, clock: Clock, retention: timedelta, player_id: str, page_rows: int = ERASE_PAGE_ROWS
) -> ErasedPlayer:
    check_player_id(player_id)
    now = clock.now()
    horizon = now - retention
    events = starts = 0
    sessions: set[bytes] = set()
    # (country, minute): what the counts need to know, far fewer than the starts for a busy player.
    touched: set[tuple[str, datetime]] = set()
    after: StoredEventKey | None = None
    while True:
        rows = await store.player_events(player_id, after, page_rows)
        page_starts = [
            (e.country, from_epoch_ms(e.ts_ms), uuid.UUID(bytes=e.session_id))
            for e in rows
            if e.is_start and e.country is not None
        ]
        await store.erase_player_rows(player_id, page_starts)
        events += len(rows)
        starts += len(page_starts)
        sessions.update(e.session_id for e in rows)
        # An hour wholly out of retention is never counted again: no touch.
        touched.update(
            (country, minute_floor(ts)) for country, ts, _ in page_starts if hour_floor(ts) + HOUR > horizon
        )
        if len(rows) < page_rows:
            break
        last = rows[-1]
        after = (last.ts_ms, last.session_id, last.is_start)

    touches = count_touches(touched, now, retention)
    if touches:
        await write_marks(store, touches, uuid.uuid4())
    await store.drop_player_events(player_id)

    removed = {
        "player_events": events,
        "starts_by_country_hour": starts,
        "starts_by_minute": starts,
    }
    for table, n in removed.items():
        metrics.ERASED_ROWS.labels(table).inc(n)
    return ErasedPlayer(player_id, removed, len(sessions), len(touches))
