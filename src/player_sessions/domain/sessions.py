"""Completed sessions: pairing a start with its end, and ordering them for "last sessions" queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["MAX_END_BEFORE_START", "LatestSessions", "Session", "SessionKey", "StoredEvent", "newest_first"]

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


def _session_id_text(session: Session) -> str:
    return str(session.session_id)


def _start(session: Session) -> datetime:
    return session.start


def newest_first(sessions: Iterable[Session], limit: int) -> list[Session]:
    """Sessions by start descending, ties by session id ascending, each session id once, at most ``limit``.

    The tie-break makes pages deterministic. Duplicates arise when the same session is read from
    two places (e.g. paired in the batch and found in storage); the first in this order wins.
    """
    if limit < 0:
        raise ValueError("limit must not be negative")
    # Two stable sorts give "start desc, id asc" without inventing a negatable key for datetimes.
    ordered = sorted(sessions, key=_session_id_text)
    ordered.sort(key=_start, reverse=True)
    seen: set[uuid.UUID] = set()
    result: list[Session] = []
    for session in ordered:
        if len(result) >= limit:
            break
        if session.session_id in seen:
            continue
        seen.add(session.session_id)
        result.append(session)
    return result


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One stored event of a player, as read back newest first (see store/schema.py player_events)."""

    ts: datetime
    session_id: uuid.UUID
    is_start: bool
    country: str | None


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
        self._starts: dict[uuid.UUID, tuple[datetime, str | None]] = {}
        self._ends: dict[uuid.UUID, datetime] = {}
        self._complete: list[Session] = []

    def add(self, events: Iterable[StoredEvent]) -> None:
        """Events strictly in the read order: ts descending."""
        starts, ends = self._starts, self._ends
        for e in events:
            sid = e.session_id
            if e.is_start:
                if sid in starts:
                    continue
                starts[sid] = (e.ts, e.country)
                end = ends.get(sid)
                if end is not None:  # its end came first in this order: end >= start
                    self._complete.append(Session(sid, self._player_id, e.country, e.ts, end))
            else:
                if sid in ends:
                    continue
                ends[sid] = e.ts
                start = starts.get(sid)
                if start is not None and e.ts >= start[0] - MAX_END_BEFORE_START:
                    self._complete.append(Session(sid, self._player_id, start[1], start[0], e.ts))

    def settled(self, read_down_to: datetime) -> bool:
        """True once the newest ``limit`` complete sessions are known, given that every event with a
        ts strictly after ``read_down_to`` has been added (some at exactly that ts may not have been)."""
        if len(self._complete) < self._limit:
            return False
        kth_start = newest_first(self._complete, self._limit)[-1].start
        return read_down_to < kth_start - MAX_END_BEFORE_START

    def newest(self) -> list[Session]:
        return newest_first(self._complete, self._limit)
