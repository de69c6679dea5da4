"""Session starts per country in the last X hours, exact at every moment (rollups/ says how)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from player_sessions.domain.clock import Clock
from player_sessions.domain.windows import parse_hours, window_for
from player_sessions.rollups import RecountFlights, count_window
from player_sessions.store.base import SessionStore


@dataclass(frozen=True)
class StartCounts:
    frm: datetime
    to: datetime
    hours: float
    countries: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.countries.values())


async def starts_per_country(
    store: SessionStore,
    clock: Clock,
    retention: timedelta,
    hours: float,
    flights: RecountFlights | None = None,
) -> StartCounts:
    hours = parse_hours(hours, retention)
    now = clock.now()
    frm, to = window_for(hours, now)
    counts = await count_window(store, frm, to, now, retention, flights)
    return StartCounts(frm, to, hours, {c: n for c, n in sorted(counts.items()) if n > 0})
