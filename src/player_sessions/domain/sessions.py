"""Completed sessions: pairing a start with its end, and ordering them for "last sessions" queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from player_sessions.domain.events import Event, EventKind

__all__ = ["Session", "SessionHalves", "SessionKey", "newest_first", "pair", "pair_in_batch"]

SessionKey = tuple[str, uuid.UUID]
"""(player_id, session_id): session ids are only unique per player as far as we are concerned."""

_ONE_SECOND = timedelta(seconds=1)


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


@dataclass(frozen=True, slots=True)
class SessionHalves:
    """What is known about one session so far; either half may still be missing.

    ``country`` comes from the start event only: it is required there and it is where the player
    was when the session began. An end's country never overrides it.
    """

    start: datetime | None
    end: datetime | None
    country: str | None


def pair(player_id: str, session_id: uuid.UUID, halves: SessionHalves) -> Session | None:
    """The completed session, or None while a half is missing."""
    if halves.start is None or halves.end is None:
        return None
    return Session(session_id, player_id, halves.country, halves.start, halves.end)


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


def pair_in_batch(events: Sequence[Event]) -> dict[SessionKey, SessionHalves]:
    """Merge the halves of each session seen in one request, so they pair without a storage read.

    A later event of the same kind for the same session overwrites an earlier one (last write wins,
    like the upsert that stores it).
    """
    # One pass with mutable [start, end] slots: hashing (player_id, UUID) keys dominates the cost,
    # so each event touches the dict once or twice and frozen SessionHalves are built only at the end.
    times: dict[SessionKey, list[datetime | None]] = {}
    countries: dict[SessionKey, str | None] = {}
    start_kind = EventKind.START
    for event in events:
        key = (event.player_id, event.session_id)
        slot = times.get(key)
        if slot is None:
            slot = times[key] = [None, None]
        if event.kind is start_kind:
            slot[0] = event.ts
            countries[key] = event.country
        else:
            slot[1] = event.ts
    return {key: SessionHalves(start, end, countries.get(key)) for key, (start, end) in times.items()}
