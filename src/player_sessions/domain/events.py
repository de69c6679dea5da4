"""A validated session event, and the error a rejected one carries."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from player_sessions.domain.errors import DomainError

__all__ = ["Event", "EventError", "EventKind", "InvalidEvent"]


class EventKind(enum.StrEnum):
    START = "start"
    END = "end"


@dataclass(frozen=True, slots=True)
class Event:
    """One half of a session, as accepted by ``validation.validate_event``.

    Invariants (established by validation, not re-checked here because events are built 100,000 at a
    time): ``ts`` is aware UTC truncated to whole milliseconds, the precision of a Cassandra
    timestamp, so what we compare in memory equals what we read back; ``country`` is an upper-case
    ISO 3166-1 alpha-2 code, and None only on an ``end``.
    """

    kind: EventKind
    player_id: str
    session_id: uuid.UUID
    ts: datetime
    country: str | None


@dataclass(frozen=True, slots=True)
class EventError:
    """Why an event was rejected: the offending field and the rule it breaks."""

    field: str
    rule: str

    @property
    def message(self) -> str:
        return f"{self.field}: {self.rule}"


class InvalidEvent(DomainError):
    """An event that breaks a rule; ``error`` names the first failing field."""

    def __init__(self, error: EventError) -> None:
        # args holds the EventError itself so the exception survives pickling (e.g. process pools).
        super().__init__(error)
        self.error = error

    def __str__(self) -> str:
        return self.error.message
