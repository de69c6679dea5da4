"""What a touch is: the rollups that starts added or removed make stale, and the marks they become."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from player_sessions.domain.retention import ttl_seconds
from player_sessions.domain.windows import DAY, HOUR, day_floor, hour_floor, minute_floor
from player_sessions.store.base import DayMark, HourMark, MinuteMark


@dataclass(frozen=True, slots=True)
class CountTouch:
    """The per-country count of one hour (its minutes, and its day) changed: starts were added to it
    or removed from it."""

    country: str
    hour: datetime
    ttl: int  # the hour's rows die when its last instant leaves the retention (its minutes' too)
    day_ttl: int  # likewise for the hour's day
    minutes: frozenset[datetime] = frozenset()  # the minutes of the hour that got starts


@dataclass(frozen=True, slots=True)
class LevelMarks:
    """The marks some touches make, one per rollup row, level by level."""

    minutes: list[MinuteMark]
    hours: list[HourMark]
    days: list[DayMark]


def count_touches(
    starts: Iterable[tuple[str, datetime]], now: datetime, retention: timedelta
) -> list[CountTouch]:
    """The touches of starts (country, ts): one per (country, hour), with the minutes of the hour
    they fall in."""
    minutes: dict[tuple[str, datetime], set[datetime]] = defaultdict(set)
    for country, ts in starts:
        minutes[(country, hour_floor(ts))].add(minute_floor(ts))
    return [
        CountTouch(
            country,
            hour,
            ttl=ttl_seconds(hour + HOUR, now, retention),
            day_ttl=ttl_seconds(day_floor(hour) + DAY, now, retention),
            minutes=frozenset(in_hour),
        )
        for (country, hour), in_hour in minutes.items()
    ]


def level_marks(touches: Sequence[CountTouch]) -> LevelMarks:
    """One mark per minute, hour and day row the touches name; an hour's mark lists every country
    touched in it, and each row keeps the longest TTL asked for it."""
    minutes: dict[datetime, int] = {}
    hours: dict[datetime, tuple[set[str], int]] = {}
    days: dict[datetime, int] = {}
    for t in touches:
        for minute in t.minutes:
            minutes[minute] = max(minutes.get(minute, 0), t.ttl)
        countries, ttl = hours.get(t.hour) or (set(), 0)
        countries.add(t.country)
        hours[t.hour] = (countries, max(ttl, t.ttl))
        day = day_floor(t.hour)
        days[day] = max(days.get(day, 0), t.day_ttl)
    return LevelMarks(
        minutes=[MinuteMark(minute, ttl) for minute, ttl in minutes.items()],
        hours=[HourMark(hour, frozenset(countries), ttl) for hour, (countries, ttl) in hours.items()],
        days=[DayMark(day, ttl) for day, ttl in days.items()],
    )
