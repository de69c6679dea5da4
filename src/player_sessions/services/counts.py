"""Session starts per country in a window: exact at every moment, cost by the window's shape.

A window is split (domain.windows.plan_window) into whole days, whole hours and at most two partial
hours. Whole days and hours are read from rollup rows (day_counts, hour_counts); a rollup is used only
if it is fresh (the recount that wrote it began after the last ingest that touched it), otherwise it is
recounted from the level below (a day from its hours, an hour from its raw rows with count(*) on the
server) and written back, so the next query finds it fresh. Partial hours are counted from raw rows.
Raw counts go one request per day (recounts: every stale country and hour of it) or per edge hour
(every country at once), GROUP BY (country, hour) on the server: one driver request where there were
one per country and hour.

Why a stale rollup can't be taken for fresh: ingest acknowledges raw rows before it writes a new
`touched` token (hour rows before day rows); a recount reads `touched` before it counts. A count that
missed a raw row was therefore written with a token older than that row's touch.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from player_sessions.domain.clock import Clock
from player_sessions.domain.errors import InvalidRequest
from player_sessions.domain.retention import ttl_seconds
from player_sessions.domain.windows import day_floor, plan_window
from player_sessions.store.base import CountRow, SessionStore

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
T = TypeVar("T")
# Count and recount statements one query keeps in flight: bounded across the whole query (a year's
# recount nests days in hours), so it never holds the store's statement slots long enough to make
# its own or other requests' statements time out waiting for one.
RAW_COUNTS_IN_FLIGHT = 64


class RecountFlights:
    """The recounts running in this process, shared: a query (or the background refresher) that needs
    a rollup another is already recounting awaits that recount instead of repeating it. Keyed by the
    rollup and its `touched` token, so an ingest that touches the rollup again starts a new one."""

    def __init__(self) -> None:
        self._running: dict[tuple[object, ...], asyncio.Future[Any]] = {}

    async def run(self, key: tuple[object, ...], recount: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(recount())
            self._running[key] = running
            running.add_done_callback(lambda _: self._running.pop(key, None))
        # Shielded: a waiter that gives up (its client went away) does not cancel the others' recount.
        result: T = await asyncio.shield(running)
        return result

    def __len__(self) -> int:
        return len(self._running)


@dataclass(frozen=True)
class StartCounts:
    frm: datetime
    to: datetime
    hours: float
    countries: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.countries.values())


def parse_hours(hours: float, retention: timedelta) -> float:
    limit = retention.total_seconds() / 3600
    if not math.isfinite(hours) or hours <= 0 or hours > limit:
        raise InvalidRequest("hours", f"must be a number > 0 and <= {limit:g} (the retention in hours)")
    return hours


def window_for(hours: float, now: datetime) -> tuple[datetime, datetime]:
    to = now.replace(microsecond=now.microsecond // 1000 * 1000)
    return to - timedelta(hours=hours), to


async def starts_per_country(store: SessionStore, clock: Clock, retention: timedelta,
                             hours: float, flights: RecountFlights | None = None) -> StartCounts:
    hours = parse_hours(hours, retention)
    now = clock.now()
    frm, to = window_for(hours, now)
    counts = await count_window(store, frm, to, now, retention, flights)
    return StartCounts(frm, to, hours, {c: n for c, n in sorted(counts.items()) if n > 0})


async def count_window(store: SessionStore, frm: datetime, to: datetime, now: datetime,
                       retention: timedelta, flights: RecountFlights | None = None) -> Counter[str]:
    plan = plan_window(frm, to)
    counter = _Counter(store, now, retention, flights)
    totals: Counter[str] = Counter()

    # Whole days: fresh day rollups, else recount the day (its stale countries) from its hours.
    days_by_year: dict[int, list[datetime]] = defaultdict(list)
    for day in plan.whole_days:
        days_by_year[day.year].append(day)
    stale_days: list[CountRow] = []
    for year, days in days_by_year.items():
        wanted = set(days)
        for row in await store.day_rows(year, min(days), max(days)):
            if row.start not in wanted:
                continue
            if row.fresh:
                totals[row.country] += row.n or 0
            else:
                stale_days.append(row)
    totals.update(await counter.day_totals(stale_days))

    # Whole hours outside whole days: fresh hour rollups, else recounted from the raw rows.
    hours_by_day: dict[datetime, set[datetime]] = defaultdict(set)
    for hour in plan.whole_hours:
        hours_by_day[day_floor(hour)].add(hour)
    hour_rows: list[CountRow] = []
    for day, hours in hours_by_day.items():
        hour_rows += [row for row in await counter.hour_rows(day) if row.start in hours]
    totals.update(await counter.hour_totals(hour_rows))

    # Partial hours at the edges: the raw starts of exactly that range, every country in one request.
    for lo, hi in plan.partial:
        hour = lo.replace(minute=0, second=0, microsecond=0)
        countries = sorted({row.country for row in await counter.hour_rows(day_floor(hour))
                            if row.start == hour})
        for (country, _), n in (await store.count_starts(countries, [hour], (lo, hi))).items():
            totals[country] += n
    return totals


class _Counter:
    """Recounts of stale rollups for one query, writing each result back (idempotent overwrite).

    Stale hours are recounted a day at a time: one request counts every stale (country, hour) of the
    day, one more saves them (batched). Stale days are recounted from their hours the same way."""

    def __init__(self, store: SessionStore, now: datetime, retention: timedelta,
                 flights: RecountFlights | None = None) -> None:
        self._store = store
        self._flights = flights or RecountFlights()
        self._now = now
        self._retention = retention
        self._hour_rows: dict[datetime, asyncio.Future[list[CountRow]]] = {}
        self._statements = asyncio.Semaphore(RAW_COUNTS_IN_FLIGHT)

    async def hour_rows(self, day: datetime) -> list[CountRow]:
        # One read per day however many (day, country) recounts ask for it at once.
        if day not in self._hour_rows:
            self._hour_rows[day] = asyncio.ensure_future(self._store.hour_rows(day))
        return await self._hour_rows[day]

    async def hour_totals(self, rows: list[CountRow]) -> Counter[str]:
        """Per country, the sum of these hour rollups: fresh ones as they are, stale ones recounted."""
        totals: Counter[str] = Counter()
        stale_by_day: dict[datetime, list[CountRow]] = defaultdict(list)
        for row in rows:
            if row.fresh:
                totals[row.country] += row.n or 0
            else:
                stale_by_day[day_floor(row.start)].append(row)
        recounted = await asyncio.gather(*(self._recount_hours(day, stale)
                                           for day, stale in stale_by_day.items()))
        for counts in recounted:
            for (country, _), n in counts.items():
                totals[country] += n
        return totals

    async def _recount_hours(self, day: datetime, rows: list[CountRow]) -> dict[tuple[str, datetime], int]:
        key = ("hours", day, tuple(sorted((r.country, r.start, str(r.touched)) for r in rows)))
        return await self._flights.run(key, partial(self._count_and_save_hours, rows))

    async def _count_and_save_hours(self, rows: list[CountRow]) -> dict[tuple[str, datetime], int]:
        # The rows' `touched` tokens were read before this count (module docstring).
        wanted = {(r.country, r.start) for r in rows}
        countries = sorted({r.country for r in rows})
        hours = sorted({r.start for r in rows})
        async with self._statements:
            if len(countries) * len(hours) <= 2 * len(wanted):
                found = await self._store.count_starts(countries, hours)
            else:  # sparse: a request per hour, with that hour's stale countries only (one at a time:
                found = {}  # this holds one of the query's statement slots)
                for h in hours:
                    found.update(await self._store.count_starts(
                        sorted({r.country for r in rows if r.start == h}), [h]))
            counts = {k: found.get(k, 0) for k in wanted}
            await self._store.save_hour_counts([
                (CountRow(r.start, r.country, counts[(r.country, r.start)], r.touched, r.touched),
                 ttl_seconds(r.start + HOUR, self._now, self._retention))
                for r in rows])
        return counts

    async def day_totals(self, day_rows: list[CountRow]) -> Counter[str]:
        """Per country, the sum of these stale day rollups, each recounted from its hours."""
        by_day: dict[datetime, list[CountRow]] = defaultdict(list)
        for row in day_rows:
            by_day[row.start].append(row)
        totals: Counter[str] = Counter()
        for counts in await asyncio.gather(*(self._recount_days(day, rows) for day, rows in by_day.items())):
            totals.update(counts)
        return totals

    async def _recount_days(self, day: datetime, rows: list[CountRow]) -> Counter[str]:
        key = ("days", day, tuple(sorted((r.country, str(r.touched)) for r in rows)))
        return await self._flights.run(key, partial(self._count_and_save_days, day, rows))

    async def _count_and_save_days(self, day: datetime, rows: list[CountRow]) -> Counter[str]:
        # The day's hour rows are read after the day rows themselves (see the module docstring).
        countries = {r.country for r in rows}
        totals = await self.hour_totals([r for r in await self.hour_rows(day) if r.country in countries])
        async with self._statements:
            await self._store.save_day_counts([
                (CountRow(r.start, r.country, totals.get(r.country, 0), r.touched, r.touched),
                 ttl_seconds(r.start + DAY, self._now, self._retention))
                for r in rows])
        return Counter({r.country: totals.get(r.country, 0) for r in rows})


async def refresh_recent(store: SessionStore, clock: Clock, retention: timedelta,
                         flights: RecountFlights | None = None) -> None:
    """Recount the stale rollups of yesterday and today: the hours ingest keeps touching."""
    now = clock.now()
    frm = max(day_floor(now) - DAY, now - retention)
    await count_window(store, frm, now, now, retention, flights)


async def refresh_backlog(store: SessionStore, clock: Clock, retention: timedelta, max_days: int,
                          flights: RecountFlights | None = None) -> int:
    """Recount up to `max_days` stale (day, country) rollups anywhere in the retention.

    After a bulk load or late events into old days, this keeps long windows (e.g. a year) on fresh
    day rollups instead of leaving their recount to the first query. Returns how many it recounted.
    """
    now = clock.now()
    first = day_floor(now - retention)
    last = day_floor(now)
    stale: list[CountRow] = []
    for year in range(first.year, last.year + 1):
        lo = max(first, first.replace(year=year, month=1, day=1))
        hi = min(last, last.replace(year=year, month=12, day=31))
        stale += [row for row in await store.day_rows(year, lo, hi) if not row.fresh]
        if len(stale) >= max_days:
            break
    await _Counter(store, now, retention, flights).day_totals(stale[:max_days])
    return min(len(stale), max_days)
