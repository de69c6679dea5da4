"""The rows the service writes for a stream of validated events, computed up front (the "raw" path).

Same tables, keys, values and TTLs as `services.ingest.store_events` + `store.cassandra`, with two
bulk-load differences that only remove work:

- halves are paired in memory across the whole stream (a writer process sees all of a player's
  events), so there is no read-back of stored halves;
- each (country, hour) is touched once per stream instead of once per request.

`RawRows` holds bound parameters in the order of the statements in `RAW_CQL`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from player_sessions.domain.events import Event, EventKind
from player_sessions.domain.retention import ttl_seconds
from player_sessions.domain.windows import day_floor, hour_floor

__all__ = ["PARTITION_BATCH_ROWS", "RAW_CQL", "PairingState", "RawRows", "partition_groups", "raw_rows"]

HOUR = timedelta(hours=1)
PARTITION_BATCH_ROWS = 100  # as store/cassandra.py: one batch = one partition, well under 50 KiB
DAY = timedelta(days=1)

# The statements of store/cassandra.py, one per table write (no batches).
RAW_CQL: dict[str, str] = {
    "start_half": "UPDATE {ks}.session_halves USING TTL ? SET start_ts = ?, country = ? "
                  "WHERE player_id = ? AND session_id = ?",
    "end_half": "UPDATE {ks}.session_halves USING TTL ? SET end_ts = ? "
                "WHERE player_id = ? AND session_id = ?",
    "start": "INSERT INTO {ks}.starts_by_country_hour (country, hour, ts, session_id, player_id) "
             "VALUES (?, ?, ?, ?, ?) USING TTL ?",
    "country_hour": "INSERT INTO {ks}.country_hours (country, hour) VALUES (?, ?) USING TTL ?",
    "touch_hour": "UPDATE {ks}.hour_counts USING TTL ? SET touched = ? "
                  "WHERE day = ? AND hour = ? AND country = ?",
    "touch_day": "UPDATE {ks}.day_counts USING TTL ? SET touched = ? "
                 "WHERE year = ? AND day = ? AND country = ?",
    "session": "INSERT INTO {ks}.sessions_by_player (player_id, start_ts, session_id, end_ts, country) "
               "VALUES (?, ?, ?, ?, ?) USING TTL ?",
}


@dataclass
class PairingState:
    """Halves seen but not yet paired, and the (country, hour) rollups already touched."""

    open: dict[tuple[str, uuid.UUID], list[Any]] = field(default_factory=dict)
    touched: set[tuple[str, datetime]] = field(default_factory=set)
    touched_days: set[tuple[str, datetime]] = field(default_factory=set)
    token: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass
class RawRows:
    """Bound parameters per statement of RAW_CQL, in write order (raw rows, touches, sessions)."""

    by_statement: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {name: [] for name in RAW_CQL})

    def count(self) -> int:
        return sum(len(rows) for rows in self.by_statement.values())

    def ordered(self) -> Iterable[tuple[str, tuple[Any, ...]]]:
        for name, rows in self.by_statement.items():
            for params in rows:
                yield name, params


def raw_rows(events: Sequence[Event], now: datetime, retention: timedelta, state: PairingState) -> RawRows:
    rows = RawRows()
    out = rows.by_statement
    start_kind = EventKind.START
    for e in events:
        ttl = ttl_seconds(e.ts, now, retention)
        key = (e.player_id, e.session_id)
        slot = state.open.get(key)
        if slot is None:
            slot = state.open[key] = [None, None, None]
        if e.kind is start_kind:
            country = e.country or ""
            out["start_half"].append((ttl, e.ts, e.country, e.player_id, e.session_id))
            hour = hour_floor(e.ts)
            out["start"].append((country, hour, e.ts, e.session_id, e.player_id, ttl))
            if (country, hour) not in state.touched:
                state.touched.add((country, hour))
                hour_ttl = ttl_seconds(hour + HOUR, now, retention)
                day = day_floor(hour)
                out["country_hour"].append((country, hour, hour_ttl))
                out["touch_hour"].append((hour_ttl, state.token, day, hour, country))
                if (country, day) not in state.touched_days:
                    state.touched_days.add((country, day))
                    out["touch_day"].append((ttl_seconds(day + DAY, now, retention), state.token,
                                             day.year, day, country))
            slot[0] = e.ts
            slot[2] = e.country
        else:
            out["end_half"].append((ttl, e.ts, e.player_id, e.session_id))
            slot[1] = e.ts
        if slot[0] is not None and slot[1] is not None:
            start, end, country_of_start = slot
            del state.open[key]
            out["session"].append((e.player_id, start, e.session_id, end, country_of_start,
                                   ttl_seconds(min(start, end), now, retention)))
    return rows


# Which partition a row of each statement goes to (the same table's rows share a key space; a session's
# two halves share a partition), and in which write phase: raw rows, then rollup touches, then sessions.
_PARTITION: dict[str, tuple[int, Callable[[tuple[Any, ...]], tuple[Any, ...]]]] = {
    "start_half": (0, lambda p: ("halves", p[3], p[4])),
    "end_half": (0, lambda p: ("halves", p[2], p[3])),
    "start": (0, lambda p: ("start", p[0], p[1])),
    "country_hour": (1, lambda p: ("country_hour", p[0])),
    "touch_hour": (1, lambda p: ("touch_hour", p[2])),
    "touch_day": (1, lambda p: ("touch_day", p[2])),
    "session": (2, lambda p: ("session", p[0])),
}


Group = list[tuple[str, tuple[Any, ...]]]


def partition_groups(rows: RawRows, size: int = PARTITION_BATCH_ROWS) -> list[Group]:
    """Rows grouped by partition, at most `size` per group, phase by phase (for unlogged batches)."""
    phases: list[dict[tuple[Any, ...], Group]] = [{}, {}, {}]
    for name, params in rows.ordered():
        phase, key_of = _PARTITION[name]
        phases[phase].setdefault(key_of(params), []).append((name, params))
    return [group[i:i + size] for phase in phases for group in phase.values()
            for i in range(0, len(group), size)]
