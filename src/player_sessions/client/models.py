"""The values the client sends and returns, as plain typed dataclasses built from the service's JSON."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from player_sessions.domain.clock import parse_instant

EventKind = Literal["start", "end"]


def rfc3339(ts: datetime) -> str:
    """An instant as the service reads it: UTC, milliseconds (its precision), ``Z``. A naive datetime
    is taken as UTC, as the service does."""
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return ts.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


@dataclass(frozen=True, slots=True)
class Event:
    """One half of a session. ``Event.start(...)`` / ``Event.end(...)`` build one; plain dicts with the
    same keys are accepted by ``send`` and ``add`` too."""

    event: EventKind
    player_id: str
    session_id: uuid.UUID | str
    ts: datetime | str
    country: str | None = None

    @classmethod
    def start(cls, player_id: str, session_id: uuid.UUID | str, country: str, ts: datetime | str) -> Event:
        return cls("start", player_id, session_id, ts, country)

    @classmethod
    def end(cls, player_id: str, session_id: uuid.UUID | str, ts: datetime | str) -> Event:
        return cls("end", player_id, session_id, ts)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "event": self.event,
            "player_id": self.player_id,
            "session_id": str(self.session_id),
            "ts": rfc3339(self.ts) if isinstance(self.ts, datetime) else self.ts,
        }
        if self.country is not None:
            body["country"] = self.country
        return body


@dataclass(frozen=True, slots=True)
class EventError:
    """A rejected event: ``index`` is its 0-based position in the caller's sequence."""

    index: int
    field: str
    error: str


@dataclass(frozen=True, slots=True)
class IngestResult:
    """The answer to ``send``, summed over every request it made. ``received`` = ``stored`` +
    ``expired`` + ``rejected``; ``errors`` has one entry per rejected event, in index order."""

    received: int = 0
    stored: int = 0
    expired: int = 0
    rejected: int = 0
    errors: tuple[EventError, ...] = field(default_factory=tuple)

    @classmethod
    def from_json(cls, body: Mapping[str, Any], offset: int = 0) -> IngestResult:
        return cls(
            int(body["received"]),
            int(body["stored"]),
            int(body["expired"]),
            int(body["rejected"]),
            tuple(
                EventError(int(e["index"]) + offset, str(e["field"]), str(e["error"])) for e in body["errors"]
            ),
        )

    def merged(self, other: IngestResult, offset: int = 0) -> IngestResult:
        """This result followed by ``other``, whose indices are shifted by ``offset``."""
        shifted = (EventError(e.index + offset, e.field, e.error) for e in other.errors)
        return IngestResult(
            self.received + other.received,
            self.stored + other.stored,
            self.expired + other.expired,
            self.rejected + other.rejected,
            (*self.errors, *shifted),
        )


def merge_results(parts: Iterable[tuple[int, IngestResult]]) -> IngestResult:
    """Merge ``(offset, result)`` pairs, each result's indices relative to its own request."""
    total = IngestResult()
    for offset, part in parts:
        total = total.merged(part, offset)
    return total


@dataclass(frozen=True, slots=True)
class Session:
    """A complete session: both its start and its end are stored and within the retention."""

    session_id: uuid.UUID
    country: str | None
    start: datetime
    end: datetime
    duration_seconds: int

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Session:
        return cls(
            uuid.UUID(body["session_id"]),
            body.get("country"),
            parse_instant(body["start"]),
            parse_instant(body["end"]),
            int(body["duration_seconds"]),
        )


@dataclass(frozen=True, slots=True)
class StartCounts:
    """Session starts per country with ``start <= ts <= end``."""

    start: datetime
    end: datetime
    hours: float
    total: int
    countries: dict[str, int]

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> StartCounts:
        return cls(
            parse_instant(body["from"]),
            parse_instant(body["to"]),
            float(body["hours"]),
            int(body["total"]),
            {str(k): int(v) for k, v in body["countries"].items()},
        )


@dataclass(frozen=True, slots=True)
class Start:
    """One session start in a country."""

    session_id: uuid.UUID
    player_id: str
    ts: datetime

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Start:
        return cls(uuid.UUID(body["session_id"]), str(body["player_id"]), parse_instant(body["ts"]))


@dataclass(frozen=True, slots=True)
class ErasedPlayer:
    """What ``erase`` removed: rows per table, sessions touched, counts marked for a recount."""

    player_id: str
    removed: dict[str, int]
    sessions: int
    rollups_marked_stale: int

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ErasedPlayer:
        return cls(
            str(body["player_id"]),
            {str(k): int(v) for k, v in body["removed"].items()},
            int(body["sessions"]),
            int(body["rollups_marked_stale"]),
        )
