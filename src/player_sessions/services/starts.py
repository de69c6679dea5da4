"""One country's session starts in a window, newest first, walked page by page with a cursor.

The cursor freezes the window (from, to) of the first page, so "now" moving on between pages neither
skips nor repeats a start, and carries the last row returned (hour, ts, session_id) and the country.
It is signed (domain/cursor.py): a cursor this service did not issue, or issued for another country,
is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from player_sessions.domain.clock import Clock
from player_sessions.domain.cursor import StartsCursor, decode_cursor, encode_cursor
from player_sessions.domain.errors import InvalidRequest
from player_sessions.domain.retention import retention_horizon
from player_sessions.domain.validation import normalise_country
from player_sessions.domain.windows import HOUR, MILLISECOND, hour_floor, parse_hours, window_for
from player_sessions.store.base import SessionStore, StartRow

MAX_LIMIT = 1000
HOURS_PER_LOOKUP = 48


@dataclass(frozen=True)
class StartsPage:
    country: str
    frm: datetime
    to: datetime
    starts: list[StartRow]
    next: str | None


async def country_starts(
    store: SessionStore,
    clock: Clock,
    retention: timedelta,
    country: str,
    hours: float | None,
    limit: int,
    cursor: str | None,
    cursor_keys: Sequence[bytes],
) -> StartsPage:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    code = normalise_country(country)
    if code is None:
        raise InvalidRequest("country", "not an ISO 3166-1 alpha-2 code")
    now = clock.now()
    position: StartsCursor | None = None
    if cursor:
        try:
            position = decode_cursor(cursor, cursor_keys)
        except ValueError as exc:
            raise InvalidRequest("cursor", "not a valid cursor") from exc
        if position.country != code:
            raise InvalidRequest("cursor", f"issued for {position.country}, not {code}")
        frm, to = position.frm, position.to
    else:
        if hours is None:
            raise InvalidRequest("hours", "required (or pass a cursor from a previous page)")
        frm, to = window_for(parse_hours(hours, retention), now)
    # Rows that left the retention since the first page are no longer returned.
    lo_bound = max(frm, retention_horizon(now, retention))

    wanted = limit + 1  # one extra row tells whether there is a next page
    found: list[StartRow] = []
    newest = position.hour if position else hour_floor(to)
    oldest = hour_floor(lo_bound)
    while len(found) < wanted and newest >= oldest:
        hours_with_data = await store.country_hours(code, newest, oldest, HOURS_PER_LOOKUP)
        for hour in hours_with_data:
            before = (position.ts, position.session_id) if position and hour == position.hour else None
            hour_end = hour + HOUR - MILLISECOND
            found += await store.starts_page(
                code, hour, max(lo_bound, hour), min(to, hour_end), before, wanted - len(found)
            )
            if len(found) >= wanted:
                break
        if len(hours_with_data) < HOURS_PER_LOOKUP:
            break
        newest = hours_with_data[-1] - HOUR

    page, more = found[:limit], len(found) > limit
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = encode_cursor(
            StartsCursor(
                country=code, frm=frm, to=to, hour=last.hour, ts=last.ts, session_id=last.session_id
            ),
            cursor_keys[0],
        )
    return StartsPage(code, frm, to, page, next_cursor)
