"""Reads the rollups of a window, recounting the stale ones from the level below.

A window is split (domain.windows.plan_window) into whole days, whole hours and at most two partial
hours. Whole days and hours are read from rollup rows (day_starts, hour_starts: one row per day or
hour holding every country's count, so a year is ~365 rows whatever the number of countries); a rollup
is used only if it is fresh (the recount that wrote it began after the last ingest that touched it),
otherwise it is recounted from the level below and written back, so the next query finds it fresh: a
day from its hours; an hour from its minute rollups while few of them are stale (live traffic), else
from its raw rows with count(*) on the server (after a bulk load); a minute from its raw rows. A
partial hour at an edge of the window reads the minute rollups of its whole minutes and counts raw
rows only in its partial minutes: an edge costs the same however many starts an hour has. Raw counts
go one request per day (hour recounts: every stale hour of it), per hour (minute recounts) or per edge
minute (every country of the minute at once), aggregated on the server.

Each recount reads a row's `touched` token before it reads the level below, and writes the count back
under that token (the package docstring says why that keeps every count exact).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable
from datetime import datetime, timedelta
from functools import partial

from player_sessions.domain.retention import ttl_seconds
from player_sessions.domain.windows import (
    DAY,
    HOUR,
    MILLISECOND,
    MINUTE,
    day_floor,
    hour_floor,
    minute_floor,
    plan_window,
)
from player_sessions.rollups.flights import RecountFlights
from player_sessions.store.base import CountRow, SessionStore

# Count and recount statements one query keeps in flight: bounded across the whole query (a year's
# recount nests days in hours), so it never holds the store's statement slots long enough to make
# its own or other requests' statements time out waiting for one.
RAW_COUNTS_IN_FLIGHT = 64
# An hour is recounted from its minute rollups while at most this many of them per hour are stale
# (each stale one is recounted from raw rows first); past it, from its raw rows in one count. A query
# looks at the minutes only when at most STALE_HOURS_FOR_MINUTES hours of a day are stale (at most
# 240 minute rows read to choose): a bulk-loaded day, all hours stale, goes straight to its raw rows
# (a year of them would otherwise read half a million minute rows first).
STALE_MINUTES_PER_HOUR_LIMIT = 15
STALE_HOURS_FOR_MINUTES = 4


async def count_window(
    store: SessionStore,
    frm: datetime,
    to: datetime,
    now: datetime,
    retention: timedelta,
    flights: RecountFlights | None = None,
    hours_from_minutes: bool = False,
) -> Counter[str]:
    """The starts per country with frm <= ts <= to. `hours_from_minutes`: recount stale hours from
    their minute rollups however many of those are stale (see Recount)."""
    plan = plan_window(frm, to)
    counter = Recount(store, now, retention, flights, hours_from_minutes)
    # The pieces are disjoint and independent: read them at once. Each kind of piece is one request
    # (days: one per year), whatever the number of days, hours or edges it spans.
    try:
        parts = await asyncio.gather(
            counter.whole_days(plan.whole_days),
            counter.whole_hours(plan.whole_hours),
            counter.partial_hours(plan.partial),
        )
    finally:
        await counter.saved()
    totals: Counter[str] = Counter()
    for part in parts:
        totals.update(part)
    return totals


class Recount:
    """Reads the rollups of one window, recounting the stale ones and writing each result back
    (an idempotent overwrite).

    Stale hours are recounted a day at a time: from their minute rollups (one request reads them, one
    per hour with stale minutes recounts those) or, when many minutes are stale (a bulk load), one
    request counts every stale hour of the day's raw rows (each over the countries its row lists),
    which leaves the minutes stale; one more saves them. The background pass (refresh_recent) always
    goes through the minutes. Stale days are recounted from their hours."""

    def __init__(
        self,
        store: SessionStore,
        now: datetime,
        retention: timedelta,
        flights: RecountFlights | None = None,
        hours_from_minutes: bool = False,
    ) -> None:
        self._store = store
        self._always_via_minutes = hours_from_minutes
        self._flights = flights if flights is not None else RecountFlights()  # an idle one has len 0
        self._asked = time.monotonic()  # before any of this window's reads
        self._now = now
        self._retention = retention
        self._statements = asyncio.Semaphore(RAW_COUNTS_IN_FLIGHT)
        self._saves: list[asyncio.Future[None]] = []

    def _save(self, write: Awaitable[None]) -> None:
        """Write a recount back without waiting for it: the level above is recounted from the values
        in hand meanwhile (one round trip less per level for a query during ingest). Each row carries
        the token read before its own count, so the order the writes land in does not matter."""

        async def bounded() -> None:
            async with self._statements:
                await write

        self._saves.append(asyncio.ensure_future(bounded()))

    async def saved(self) -> None:
        """Wait for every write-back started so far; the first failure is raised."""
        while self._saves:
            pending, self._saves = self._saves, []
            results = await asyncio.gather(*pending, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise failures[0]

    async def whole_days(self, days: list[datetime]) -> Counter[str]:
        """Fresh day rollups as they are, stale ones recounted from their hours."""
        days_by_year: dict[int, list[datetime]] = defaultdict(list)
        for day in days:
            days_by_year[day.year].append(day)
        totals: Counter[str] = Counter()
        stale: list[CountRow] = []
        for year_rows in await asyncio.gather(
            *(self._store.day_rows(year, min(ds), max(ds)) for year, ds in days_by_year.items())
        ):
            for row in year_rows:
                if row.fresh:
                    totals.update(row.counts or {})
                else:
                    stale.append(row)
        totals.update(await self.day_totals(stale))
        return totals

    async def whole_hours(self, hours: list[datetime]) -> Counter[str]:
        """The hours' rollups, read in one request over their days: outside the window's whole days,
        the hours of a day in the window are contiguous, so one range over those days holds exactly
        them (filtered anyway)."""
        if not hours:
            return Counter()
        wanted = set(hours)
        days = sorted({day_floor(hour) for hour in hours})
        rows = await self._store.hour_rows_of_days(days, min(hours), max(hours))
        return await self.hour_totals([row for row in rows if row.start in wanted])

    async def partial_hours(self, pieces: list[tuple[datetime, datetime]]) -> Counter[str]:
        """The starts of exactly these pieces: inclusive [lo, hi] ranges, each within one hour, that
        are the edges of one contiguous window. Their whole minutes come from minute rollups (one
        request over the pieces' hours), the minutes the edges cut from raw rows (starts_by_minute:
        every country and shard of those minutes in one request, filtered to the window's bounds, which
        inside a cut minute are exactly the piece's). The two requests go out together."""
        if not pieces:
            return Counter()
        wanted: set[datetime] = set()
        cut: list[datetime] = []
        for lo, hi in pieces:
            minute = minute_floor(lo)
            while minute <= hi:
                if lo <= minute and minute + MINUTE - MILLISECOND <= hi:
                    wanted.add(minute)
                else:
                    cut.append(minute)
                minute += MINUTE
        window_lo, window_hi = min(lo for lo, _ in pieces), max(hi for _, hi in pieces)

        async def whole_minutes() -> Counter[str]:
            if not wanted:
                return Counter()
            hours = sorted({hour_floor(minute) for minute in wanted})
            rows = await self._store.minute_rows(hours, min(wanted), max(wanted))
            by_hour: dict[datetime, list[CountRow]] = defaultdict(list)
            for row in rows:
                if row.start in wanted:
                    by_hour[hour_floor(row.start)].append(row)
            totals: Counter[str] = Counter()
            for part in await asyncio.gather(
                *(self.minute_totals(hour, hour_rows) for hour, hour_rows in by_hour.items())
            ):
                totals.update(part)
            return totals

        totals, raw = await asyncio.gather(
            whole_minutes(), self._store.count_starts_between(cut, window_lo, window_hi)
        )
        totals.update(raw)
        return totals

    async def minute_totals(
        self, hour: datetime, rows: list[CountRow], asked: float | None = None
    ) -> Counter[str]:
        """Per country, the sum of these minute rollups of `hour`: fresh as they are, stale ones
        recounted from raw rows (every country of the minutes, one request)."""
        totals: Counter[str] = Counter()
        stale = []
        for row in rows:
            if row.fresh:
                totals.update(row.counts or {})
            else:
                stale.append(row)
        if stale:
            key = ("minutes", hour, tuple(sorted((r.start, r.touched or b"") for r in stale)))
            # A minute recount counts every country of the minutes it is given: only their list matters.
            group = ("minutes", hour, tuple(sorted(r.start for r in stale)))
            recounted = await self._flights.run(
                key,
                partial(self._count_and_save_minutes, hour, stale),
                group=group,
                asked=asked if asked is not None else self._asked,
            )
            for per_country in recounted.values():
                totals.update(per_country)
        return totals

    async def _count_and_save_minutes(
        self, hour: datetime, rows: list[CountRow]
    ) -> dict[datetime, dict[str, int]]:
        # The rows' tokens were read before this count (module docstring); every country at once.
        async with self._statements:
            found = await self._store.count_minutes([r.start for r in rows])
        counts: dict[datetime, dict[str, int]] = {r.start: {} for r in rows}
        for (country, minute), n in found.items():
            if minute in counts and n:
                counts[minute][country] = n
        self._save(
            self._store.save_minute_counts(
                [
                    (
                        CountRow(r.start, counts[r.start], r.touched, r.touched),
                        ttl_seconds(hour + HOUR, self._now, self._retention),
                    )
                    for r in rows
                ]
            )
        )
        return counts

    async def hour_totals(self, rows: list[CountRow], asked: float | None = None) -> Counter[str]:
        """Per country, the sum of these hour rollups: fresh ones as they are, stale ones recounted."""
        totals: Counter[str] = Counter()
        stale_by_day: dict[datetime, list[CountRow]] = defaultdict(list)
        for row in rows:
            if row.fresh:
                totals.update(row.counts or {})
            else:
                stale_by_day[day_floor(row.start)].append(row)
        recounted = await asyncio.gather(
            *(self._recount_hours(day, stale, asked) for day, stale in stale_by_day.items())
        )
        for counts in recounted:
            for per_country in counts.values():
                totals.update(per_country)
        return totals

    async def _recount_hours(
        self, day: datetime, rows: list[CountRow], asked: float | None
    ) -> dict[datetime, dict[str, int]]:
        key = ("hours", day, tuple(sorted((r.start, r.touched or b"") for r in rows)))
        # Counted from raw rows, an hour is counted for the countries its row lists: those are part of
        # what the recount is given.
        group = ("hours", day, tuple(sorted((r.start, tuple(sorted(r.countries))) for r in rows)))
        return await self._flights.run(
            key,
            partial(self._count_and_save_hours, rows),
            group=group,
            asked=asked if asked is not None else self._asked,
        )

    async def _count_and_save_hours(self, rows: list[CountRow]) -> dict[datetime, dict[str, int]]:
        # Shared recounts this one joins must have begun after it did: any query sharing this recount
        # was asked before it began (RecountFlights), not only the query that started it.
        began = time.monotonic()
        # The rows' `touched` tokens (and the countries written with them) were read before this count
        # (module docstring). From their minute rollups when few of those are stale (live traffic
        # touches a few minutes of an hour between two recounts: the hour costs its ~60 minute rows,
        # not a count of every start it holds), else from raw rows (a bulk load left every minute stale).
        hours = sorted(r.start for r in rows)
        counts = None
        if self._always_via_minutes or len(hours) <= STALE_HOURS_FOR_MINUTES:
            minutes = await self._store.minute_rows(hours, hours[0], hours[-1] + HOUR - MINUTE)
            stale_minutes = sum(1 for m in minutes if not m.fresh)
            if self._always_via_minutes or stale_minutes <= STALE_MINUTES_PER_HOUR_LIMIT * len(hours):
                counts = await self._hours_from_minutes(hours, minutes, began)
        if counts is None:
            counts = await self._hours_from_raw_rows(rows)
        self._save(
            self._store.save_hour_counts(
                [
                    (
                        CountRow(r.start, counts[r.start], r.touched, r.touched),
                        ttl_seconds(r.start + HOUR, self._now, self._retention),
                    )
                    for r in rows
                ]
            )
        )
        return counts

    async def _hours_from_minutes(
        self, hours: list[datetime], minutes: list[CountRow], began: float
    ) -> dict[datetime, dict[str, int]]:
        by_hour: dict[datetime, list[CountRow]] = {hour: [] for hour in hours}
        for row in minutes:
            by_hour[hour_floor(row.start)].append(row)
        totals = await asyncio.gather(*(self.minute_totals(hour, by_hour[hour], began) for hour in hours))
        return {
            hour: {c: n for c, n in total.items() if n} for hour, total in zip(hours, totals, strict=True)
        }

    async def _hours_from_raw_rows(self, rows: list[CountRow]) -> dict[datetime, dict[str, int]]:
        wanted = sum(len(r.countries) for r in rows)
        countries = sorted({c for r in rows for c in r.countries})
        hours = sorted(r.start for r in rows)
        async with self._statements:
            if len(countries) * len(hours) <= 2 * wanted:
                found = await self._store.count_starts(countries, hours)
            else:  # sparse: a request per hour, with that hour's countries only (one at a time: this
                found = {}  # holds one of the query's statement slots)
                for row in rows:
                    found.update(await self._store.count_starts(sorted(row.countries), [row.start]))
        return {
            r.start: {c: found[(c, r.start)] for c in r.countries if found.get((c, r.start))} for r in rows
        }

    async def day_totals(self, day_rows: list[CountRow]) -> Counter[str]:
        """Per country, the sum of these stale day rollups, each recounted from its hours."""
        totals: Counter[str] = Counter()
        for counts in await asyncio.gather(*(self._recount_day(row) for row in day_rows)):
            totals.update(counts)
        return totals

    async def _recount_day(self, row: CountRow) -> dict[str, int]:
        key = ("day", row.start, row.touched)
        # A day recount reads its hour rows itself.
        return await self._flights.run(
            key, partial(self._count_and_save_day, row), group=("day", row.start), asked=self._asked
        )

    async def _count_and_save_day(self, row: CountRow) -> dict[str, int]:
        # The day's hour rows are read after the day row itself (see the module docstring).
        began = time.monotonic()  # as in _count_and_save_hours
        totals = await self.hour_totals(await self._store.hour_rows(row.start), began)
        counts = {c: n for c, n in totals.items() if n}
        self._save(
            self._store.save_day_counts(
                [
                    (
                        CountRow(row.start, counts, row.touched, row.touched),
                        ttl_seconds(row.start + DAY, self._now, self._retention),
                    )
                ]
            )
        )
        return counts
