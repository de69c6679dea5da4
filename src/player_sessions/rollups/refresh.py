"""Background passes that recount stale rollups before queries need them."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from player_sessions import metrics
from player_sessions.domain.clock import Clock
from player_sessions.domain.windows import DAY, day_floor
from player_sessions.rollups.flights import RecountFlights
from player_sessions.rollups.recount import Recount, count_window
from player_sessions.store.base import CountRow, SessionStore
from player_sessions.store.errors import StoreError

log = logging.getLogger("player_sessions")
BACKLOG_DAYS_PER_PASS = 200
SLOW_PASS_S = 0.1  # a background pass this long is logged (it shares the event loop with requests)


async def refresh_forever(
    store: SessionStore, clock: Clock, retention: timedelta, interval_s: float, flights: RecountFlights
) -> None:
    """Recount stale rollups in passes, every `interval_s` seconds, until cancelled.

    Recent hours are the ones ingest keeps touching; recounting them here keeps the queries' common
    case on fresh rollups. Older stale rollups (a bulk load, late events) are worked off in bounded
    passes, back to back while a backlog remains, so a year-long window soon reads fresh day rollups
    only. Looking for that backlog reads the day rows of the retention (~366 rows, every country in
    each, a few ms), so every pass looks. The first pass runs at once: a process that starts after a
    load (or an outage of the others) brings the rollups up to date before its first queries need
    them, not interleaved with them.
    """
    backlog = 0
    first = True
    while True:
        if not first and backlog < BACKLOG_DAYS_PER_PASS:
            await asyncio.sleep(interval_s)
        first = False
        try:
            began = time.perf_counter()
            await refresh_recent(store, clock, retention, flights)
            recent_s = time.perf_counter() - began
            backlog = await refresh_backlog(store, clock, retention, BACKLOG_DAYS_PER_PASS, flights)
            took = time.perf_counter() - began
            metrics.ROLLUP_PASSES.observe(took)
            metrics.ROLLUP_BACKLOG_DAYS.inc(backlog)
            if took >= SLOW_PASS_S:
                log.info(
                    "rollup refresh took %.0f ms (yesterday and today %.0f ms, %d stale days recounted)",
                    took * 1000,
                    recent_s * 1000,
                    backlog,
                )
        except StoreError as exc:
            backlog = 0
            log.warning("rollup refresh skipped: %s", exc)


async def refresh_recent(
    store: SessionStore, clock: Clock, retention: timedelta, flights: RecountFlights | None = None
) -> None:
    """Recount the stale rollups of yesterday and today: the hours ingest keeps touching. Their hours
    are recounted from minute rollups even when all of those are stale (after a bulk load): the
    minutes are then fresh, and the next recount of an hour that live traffic touched costs its minute
    rows and the few minutes touched, not a count of every start of the hour."""
    now = clock.now()
    frm = max(day_floor(now) - DAY, now - retention)
    await count_window(store, frm, now, now, retention, flights, hours_from_minutes=True)


async def refresh_backlog(
    store: SessionStore,
    clock: Clock,
    retention: timedelta,
    max_days: int,
    flights: RecountFlights | None = None,
) -> int:
    """Recount up to `max_days` stale day rollups of the retention before yesterday.

    After a bulk load or late events into old days, this keeps long windows (e.g. a year) on fresh
    day rollups instead of leaving their recount to the first query. Returns how many it recounted.
    Yesterday and today are refresh_recent's, through their minutes: live traffic touches them again
    while a pass runs, and recounted here their many stale hours would be counted from every raw row.
    """
    now = clock.now()
    first = day_floor(now - retention)
    last = day_floor(now) - 2 * DAY
    stale: list[CountRow] = []
    for year in range(first.year, last.year + 1):
        lo = max(first, first.replace(year=year, month=1, day=1))
        hi = min(last, last.replace(year=year, month=12, day=31))
        stale += [row for row in await store.day_rows(year, lo, hi) if not row.fresh]
        if len(stale) >= max_days:
            break
    counter = Recount(store, now, retention, flights)
    try:
        await counter.day_totals(stale[:max_days])
    finally:
        await counter.saved()
    return min(len(stale), max_days)
