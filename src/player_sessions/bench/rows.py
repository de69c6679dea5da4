"""The rows the service writes for a stream of validated events, computed up front (the "raw" paths).

The same rows as `services.ingest.store_events`: one `player_events` row per event (an end's country
UNSET, never null), a `starts_by_country_hour` and a `starts_by_minute` row per start, and the marks
`rollups.level_marks` makes of their touches, written in `rollups.write_marks`' order (raw rows, then
minute marks, then hour marks with their country_hours rows, then day marks, each phase acknowledged
before the next). There is no read and no pairing at ingest, in the service or here.

The one difference from the service, which removes work the measurement is not about: each minute,
(country, hour) and day is marked once per stream (`TouchState`) instead of once per request.

`RawRows` holds bound parameters per statement of `STATEMENTS`; `PHASE` says which write
phase each statement belongs to.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cassandra.query import UNSET_VALUE

from player_sessions.domain.events import Event, EventKind
from player_sessions.domain.retention import ttl_seconds
from player_sessions.domain.windows import day_floor, hour_floor, minute_floor
from player_sessions.rollups import count_touches, level_marks
from player_sessions.store.schema import minute_shard

__all__ = [
    "PARTITION_BATCH_ROWS",
    "PHASE",
    "PHASES",
    "STATEMENTS",
    "RawRows",
    "TouchState",
    "partition_groups",
    "phase_groups",
    "phase_rows",
    "raw_rows",
]

PARTITION_BATCH_ROWS = 100  # as the store's batches

# The store's write statements the rows go to (fields of store.statements.Statements), in write order.
STATEMENTS: tuple[str, ...] = (
    "put_event",
    "put_start",
    "put_minute_start",
    "touch_minute",
    "put_country_hour",
    "touch_hour",
    "touch_day",
)

# The service's write phases (rollups.write_marks): raw rows, minute marks, hour marks (with their
# country_hours rows), day marks.
PHASE: dict[str, int] = {
    "put_event": 0,
    "put_start": 0,
    "put_minute_start": 0,
    "touch_minute": 1,
    "put_country_hour": 2,
    "touch_hour": 2,
    "touch_day": 3,
}
PHASES = 4


@dataclass
class TouchState:
    """The (country, hour) pairs and days already touched in this stream, and its token."""

    touched: set[tuple[str, datetime]] = field(default_factory=set)
    touched_days: set[datetime] = field(default_factory=set)
    touched_minutes: set[datetime] = field(default_factory=set)
    token: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass
class RawRows:
    """Bound parameters per statement of STATEMENTS, in write order (raw rows, then marks)."""

    by_statement: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {name: [] for name in STATEMENTS}
    )

    def count(self) -> int:
        return sum(len(rows) for rows in self.by_statement.values())

    def ordered(self) -> Iterable[tuple[str, tuple[Any, ...]]]:
        for name, rows in self.by_statement.items():
            for params in rows:
                yield name, params


def raw_rows(events: Sequence[Event], now: datetime, retention: timedelta, state: TouchState) -> RawRows:
    rows = RawRows()
    out = rows.by_statement
    events_out = out["put_event"]
    starts_out = out["put_start"]
    minute_starts_out = out["put_minute_start"]
    start_kind = EventKind.START
    starts: list[tuple[str, datetime]] = []
    for e in events:
        ttl = ttl_seconds(e.ts, now, retention)
        if e.kind is not start_kind:
            events_out.append((e.player_id, e.ts, e.session_id, False, UNSET_VALUE, ttl))
            continue
        country = e.country
        events_out.append(
            (e.player_id, e.ts, e.session_id, True, country if country is not None else UNSET_VALUE, ttl)
        )
        if country is None:  # validation requires a start's country; as the service, no start row without
            continue
        starts_out.append((country, hour_floor(e.ts), e.ts, e.session_id, e.player_id, ttl))
        minute_starts_out.append(
            (minute_floor(e.ts), minute_shard(e.session_id), country, e.ts, e.session_id, ttl)
        )
        starts.append((country, e.ts))
    marks = level_marks(count_touches(starts, now, retention))
    token = state.token
    for minute_mark in marks.minutes:
        if minute_mark.minute not in state.touched_minutes:
            state.touched_minutes.add(minute_mark.minute)
            out["touch_minute"].append(
                (minute_mark.ttl, token, hour_floor(minute_mark.minute), minute_mark.minute)
            )
    for hour_mark in marks.hours:
        hour = hour_mark.hour
        new = sorted(c for c in hour_mark.countries if (c, hour) not in state.touched)
        if not new:
            continue
        state.touched.update((c, hour) for c in new)
        out["touch_hour"].append((hour_mark.ttl, token, set(new), day_floor(hour), hour))
        out["put_country_hour"].extend((c, hour, hour_mark.ttl) for c in new)
    for day_mark in marks.days:
        if day_mark.day not in state.touched_days:
            state.touched_days.add(day_mark.day)
            out["touch_day"].append((day_mark.ttl, token, day_mark.day.year, day_mark.day))
    return rows


# Which partition a row of each statement goes to (rows of one table share a key space).
_PARTITION: dict[str, Callable[[tuple[Any, ...]], tuple[Any, ...]]] = {
    "put_event": lambda p: ("put_event", p[0]),
    "put_start": lambda p: ("put_start", p[0], p[1]),
    "put_minute_start": lambda p: ("put_minute_start", p[0], p[1]),
    "put_country_hour": lambda p: ("put_country_hour", p[0]),
    "touch_hour": lambda p: ("touch_hour", p[3]),
    "touch_minute": lambda p: ("touch_minute", p[2]),
    "touch_day": lambda p: ("touch_day", p[2]),
}

Row = tuple[str, tuple[Any, ...]]
Group = list[Row]


def phase_rows(rows: RawRows) -> list[list[Row]]:
    """The rows of each write phase, in order: every phase must be acknowledged before the next."""
    phases: list[list[Row]] = [[] for _ in range(PHASES)]
    for name, params in rows.ordered():
        phases[PHASE[name]].append((name, params))
    return phases


def phase_groups(rows: RawRows, size: int = PARTITION_BATCH_ROWS) -> list[list[Group]]:
    """Per write phase: rows grouped by partition, at most `size` per group (for unlogged batches)."""
    out: list[list[Group]] = []
    for phase in phase_rows(rows):
        by_partition: dict[tuple[Any, ...], Group] = {}
        for name, params in phase:
            by_partition.setdefault(_PARTITION[name](params), []).append((name, params))
        out.append(
            [group[i : i + size] for group in by_partition.values() for i in range(0, len(group), size)]
        )
    return out


def partition_groups(rows: RawRows, size: int = PARTITION_BATCH_ROWS) -> list[Group]:
    """`phase_groups` flattened: every group of a phase comes before any group of a later phase."""
    return [group for phase in phase_groups(rows, size) for group in phase]
