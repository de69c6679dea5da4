"""What the services need from storage, as plain values. `cassandra.py` is the implementation."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from player_sessions.domain.sessions import StoredEvent

StoredEventKey = tuple[int, bytes, bool]
"""(ts as epoch ms, session_id's bytes, is_start): a row of player_events; a read continues strictly
after it."""


@dataclass(frozen=True, slots=True)
class EventWrite:
    """One event's row in its player's partition of player_events."""

    player_id: str
    session_id: uuid.UUID
    is_start: bool
    ts: datetime
    country: str | None
    ttl: int


@dataclass(frozen=True, slots=True)
class StartWrite:
    country: str
    hour: datetime
    ts: datetime
    session_id: uuid.UUID
    player_id: str
    ttl: int


@dataclass(frozen=True, slots=True)
class MinuteMark:
    """Marks a minute rollup of minute_starts stale (starts were added to or removed from it)."""

    minute: datetime
    ttl: int


@dataclass(frozen=True, slots=True)
class HourMark:
    """Marks an hour rollup stale and adds `countries` to the countries it lists; each of them also
    gets the hour in its country_hours index (the pages of one country's starts read it)."""

    hour: datetime
    countries: frozenset[str]
    ttl: int


@dataclass(frozen=True, slots=True)
class DayMark:
    day: datetime
    ttl: int


@dataclass(frozen=True, slots=True)
class CountRow:
    """A rollup row of hour_starts or day_starts: the starts per country of the hour or day `start`.

    `counts` is as of the recount that read token `counted`; `countries` (hours only) is every country
    ingest added starts of, which is what a recount of the hour counts. The tokens are the 16 bytes of
    the UUIDs ingest writes: only compared and written back, never interpreted."""

    start: datetime
    counts: Mapping[str, int] | None
    touched: bytes | None
    counted: bytes | None
    countries: frozenset[str] = frozenset()

    @property
    def fresh(self) -> bool:
        return self.counts is not None and self.touched is not None and self.counted == self.touched


@dataclass(frozen=True, slots=True)
class StartRow:
    hour: datetime
    ts: datetime
    session_id: uuid.UUID
    player_id: str


class BoundWrites(Protocol):
    """A store's ready-to-send statements for some rows; only the store that bound them reads them."""

    def __len__(self) -> int: ...


class SessionStore(Protocol):
    async def ping(self) -> None: ...
    async def ready(self) -> None: ...

    # ingest
    async def put_events(self, events: Sequence[EventWrite], starts: Sequence[StartWrite]) -> None: ...
    def bind_events(self, events: Sequence[EventWrite], starts: Sequence[StartWrite]) -> BoundWrites:
        """put_events' statements, bound and batched: CPU only, safe to call from any thread."""
        ...

    async def put_bound(self, bound: BoundWrites) -> None:
        """Write what bind_events returned (once)."""
        ...

    # rollup marks: each writes `token` as the rows' `touched`, in one or a few batches
    async def mark_minutes(self, marks: Sequence[MinuteMark], token: uuid.UUID) -> None: ...
    async def mark_hours(self, marks: Sequence[HourMark], token: uuid.UUID) -> None: ...
    async def mark_days(self, marks: Sequence[DayMark], token: uuid.UUID) -> None: ...

    # erase a player
    async def erase_player_rows(
        self, player_id: str, starts: Sequence[tuple[str, datetime, uuid.UUID]]
    ) -> None: ...
    async def drop_player_events(self, player_id: str) -> None: ...

    # sessions
    async def player_events(
        self, player_id: str, before: StoredEventKey | None, limit: int
    ) -> list[StoredEvent]: ...

    # counts
    async def hour_rows(
        self, day: datetime, first_hour: datetime | None = None, last_hour: datetime | None = None
    ) -> list[CountRow]:
        """The day's hour rollups, from `first_hour` to `last_hour` (inclusive) if given."""
        ...

    async def hour_rows_of_days(
        self, days: Sequence[datetime], first_hour: datetime, last_hour: datetime
    ) -> list[CountRow]:
        """The hour rollups from `first_hour` to `last_hour` (inclusive) of these days, in one request."""
        ...

    async def day_rows(self, year: int, first_day: datetime, last_day: datetime) -> list[CountRow]: ...
    async def minute_rows(
        self, hours: Sequence[datetime], first_minute: datetime, last_minute: datetime
    ) -> list[CountRow]:
        """The minute rollups from `first_minute` to `last_minute` (inclusive) of these hours, in one
        request."""
        ...

    async def save_minute_counts(self, rows: Sequence[tuple[CountRow, int]]) -> None: ...
    async def count_minutes(self, minutes: Sequence[datetime]) -> dict[tuple[str, datetime], int]:
        """Raw starts per (country, minute) of these minutes, every country, in one request; a pair
        without starts is absent."""
        ...

    async def count_starts_between(
        self, minutes: Sequence[datetime], lo: datetime, hi: datetime
    ) -> dict[str, int]:
        """Raw starts per country with lo <= ts <= hi in these minutes, in one request."""
        ...

    async def count_starts(
        self, countries: Sequence[str], hours: Sequence[datetime]
    ) -> dict[tuple[str, datetime], int]:
        """Raw starts of every (country, hour) of the product; a pair without starts is absent."""
        ...

    async def save_hour_counts(self, rows: Sequence[tuple[CountRow, int]]) -> None:
        """Each row's `counts` and `counted` (its `start` is the hour), with the TTL beside it."""
        ...

    async def save_day_counts(self, rows: Sequence[tuple[CountRow, int]]) -> None: ...

    # pagination
    async def country_hours(
        self, country: str, newest: datetime, oldest: datetime, limit: int
    ) -> list[datetime]: ...
    async def starts_page(
        self,
        country: str,
        hour: datetime,
        lo: datetime,
        hi: datetime,
        before: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[StartRow]: ...
