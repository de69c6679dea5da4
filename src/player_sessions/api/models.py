"""Wire models: the JSON shapes of the HTTP contract (documented in OpenAPI), named by suffix."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class EventIn(BaseModel):
    """One session event as clients send it (validated by the domain rules, not by this model)."""

    event: Literal["start", "end"]
    player_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    session_id: uuid.UUID = Field(
        description="a UUID (also 32 hex digits without hyphens, any case)",
        examples=["4a0c43c9-c43a-42ff-ba55-67563dfa35d4"],
    )
    country: str | None = Field(None, description="ISO 3166-1 alpha-2; required on start", examples=["FI"])
    ts: datetime = Field(
        description="ISO 8601 / RFC 3339; without an offset it is UTC; kept to the millisecond",
        examples=["2016-11-22T20:37:47Z"],
    )


class EventsIn(BaseModel):
    events: list[EventIn] = Field(min_length=1, max_length=100_000)


class EventErrorOut(BaseModel):
    index: int = Field(description="0-based position of the event in the request")
    field: str
    error: str = Field(examples=["session_id: not a UUID"])


class IngestResultOut(BaseModel):
    received: int
    stored: int
    expired: int
    rejected: int
    errors: list[EventErrorOut]


class SessionOut(BaseModel):
    session_id: uuid.UUID
    country: str | None
    start: datetime = Field(examples=["2016-11-06T02:35:22Z"])
    end: datetime = Field(examples=["2016-11-06T02:43:23Z"])
    duration_seconds: int


class PlayerSessionsOut(BaseModel):
    player_id: str
    sessions: list[SessionOut]
    truncated: bool = Field(
        description="true when the read stopped at --player-read-max-rows of the "
        "player's events (default 20,000) before the answer was settled: `sessions` "
        "are the complete sessions found in the newest events read, possibly fewer "
        "than `limit`"
    )


class StartCountsOut(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    hours: float
    total: int
    countries: dict[str, int]


class StartOut(BaseModel):
    session_id: uuid.UUID
    player_id: str
    ts: datetime


class CountryStartsOut(BaseModel):
    country: str
    starts: list[StartOut]
    next: str | None


class HealthOut(BaseModel):
    status: str


class ErrorOut(BaseModel):
    error: str
    field: str | None = None


class ErasedPlayerOut(BaseModel):
    player_id: str
    removed: dict[str, int] = Field(
        description="rows deleted per table", examples=[{"player_events": 6, "starts_by_country_hour": 3}]
    )
    sessions: int = Field(description="distinct sessions (complete or not) the deleted events belonged to")
    rollups_marked_stale: int = Field(description="(country, hour) counts recounted at the next query")
