"""Completed sessions: pairing a start with its end, and ordering them for "last sessions" queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from player_sessions.domain.windows import MILLISECOND

__all__ = [
    "MAX_END_BEFORE_START",
    "LatestSessions",
    "Session",
    "SessionKey",
    "StoredEvent",
    "epoch_ms",
    "from_epoch_ms",
]

SessionKey = tuple[str, uuid.UUID]
"""(player_id, session_id): session ids are only unique per player as far as we are concerned."""

_ONE_SECOND = timedelta(seconds=1)
MAX_END_BEFORE_START = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Session:
    session_id: uuid.UUID
    player_id: str
    country: str | None
    start: datetime
    end: datetime

    @property
    def duration_seconds(self) -> int:
        """Whole seconds from start to end, never negative.

        Clients' clocks can put an end slightly before its start; the session is still reported,
        with duration 0, rather than dropped or shown with a negative length.
        """
        return max(0, (self.end - self.start) // _ONE_SECOND)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_END_BEFORE_START_MS = MAX_END_BEFORE_START // MILLISECOND


def epoch_ms(ts: datetime) -> int:
    """An aware datetime as whole milliseconds since the epoch (Cassandra's timestamp precision)."""
    return (ts - _EPOCH) // MILLISECOND


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + ms * MILLISECOND


class StoredEvent(NamedTuple):
    """One stored event of a player, as read back newest first (see store/schema.py player_events).

    In the form the store reads cheaply, epoch milliseconds and the session id's 16 bytes: building a
    datetime and a UUID per row was ~40 % of a whale's request (96 rows read, 20 sessions returned),
    so only the returned sessions get them (LatestSessions.newest). A named tuple: the store's row
    factory makes each row one directly, with no second object per row."""

    ts_ms: int
    session_id: bytes
    is_start: bool
    country: str | None

    @classmethod
    def of(cls, ts: datetime, session_id: uuid.UUID, is_start: bool, country: str | None) -> StoredEvent:
        return cls(epoch_ms(ts), session_id.bytes, is_start, country)


# (start ms, session id bytes, country, end ms): a complete session before it is returned.
_Paired = tuple[int, bytes, str | None, int]


def _newest_key(paired: _Paired) -> tuple[int, bytes]:
    # Start descending, then session id ascending: the bytes order is the order of the UUIDs' text.
    return (-paired[0], paired[1])


class LatestSessions:
    """Pairs a player's stored events, fed newest ts first in pages, into complete sessions, and says
    when enough has been read to know the newest ``limit`` of them.

    Rules (pure, so the same wherever pairing happens):
    - a session is complete when a start and an end of it are stored; the newest of each wins when a
      client re-sent one with another ts (byte-identical duplicates are one row anyway);
    - an end may precede its start (clocks disagree) by at most ``MAX_END_BEFORE_START``; further
      apart the two do not make a session. That bound is what lets the read stop: once every event
      down to ``s - MAX_END_BEFORE_START`` is read, every session starting at or after ``s`` is settled.
    """

    def __init__(self, player_id: str, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._player_id = player_id
        self._limit = limit
        self._starts: dict[bytes, tuple[int, str | None]] = {}
        self._ends: dict[bytes, int] = {}
        self._complete: list[_Paired] = []

    def add(self, events: Iterable[StoredEvent]) -> None:
        """Events strictly in the read order: ts descending."""
        starts, ends, complete = self._starts, self._ends, self._complete
        for e in events:
            sid = e.session_id
            if e.is_start:
                if sid in starts:
                    continue
                starts[sid] = (e.ts_ms, e.country)
                end = ends.get(sid)
                if end is not None:  # its end came first in this order: end >= start
                    complete.append((e.ts_ms, sid, e.country, end))
            else:
                if sid in ends:
                    continue
                ends[sid] = e.ts_ms
                start = starts.get(sid)
                if start is not None and e.ts_ms >= start[0] - _MAX_END_BEFORE_START_MS:
                    complete.append((start[0], sid, start[1], e.ts_ms))

    def settled(self, read_down_to_ms: int) -> bool:
        """True once the newest ``limit`` complete sessions are known, given that every event with a
        ts strictly after ``read_down_to_ms`` has been added (some at exactly that ts may not have been)."""
        if len(self._complete) < self._limit:
            return False
        kth_start = self._newest()[-1][0]
        return read_down_to_ms < kth_start - _MAX_END_BEFORE_START_MS

    def newest(self) -> list[Session]:
        player = self._player_id
        return [
            Session(uuid.UUID(bytes=sid), player, country, from_epoch_ms(start), from_epoch_ms(end))
            for start, sid, country, end in self._newest()
        ]

    def _newest(self) -> list[_Paired]:
        # By start descending, ties by session id ascending (deterministic pages). A session id
        # completes once (its start and its end are each kept once), so there are no duplicates.
        return sorted(self._complete, key=_newest_key)[: self._limit]
