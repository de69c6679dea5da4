"""Turn one decoded JSON value into an ``Event`` or an ``InvalidEvent`` naming the first broken rule.

This runs once per event, up to 100,000 times per request, so it is written for the happy path:
precompiled patterns, a single dict lookup for country codes, shared ``EventError`` constants, and
no exceptions raised internally unless the event is actually rejected.

Fields are checked in a fixed order (the object itself, ``event``, ``player_id``, ``session_id``,
``country``, ``ts``) and only the first failure is reported, so a client fixes one thing at a time
and the message for a given input never depends on dict ordering. Unknown fields are ignored so
clients can send extra data without breaking.

``session_id`` accepts the canonical ``8-4-4-4-12`` hex form and the 32-hex-digit form without
hyphens, in any letter case. ``uuid.UUID`` alone is not used as the gate because it also accepts
braces, ``urn:uuid:`` prefixes, hyphens anywhere, surrounding spaces and non-ASCII digits.

An empty ``country`` counts as absent: required on ``start``, None on ``end``.

Retention is not checked here: an expired event is valid, and the caller decides what to do with it
through ``retention.is_expired``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import pycountry

from player_sessions.domain.clock import try_parse_instant
from player_sessions.domain.events import Event, EventError, EventKind, InvalidEvent

__all__ = ["DEFAULT_RULES", "ValidationRules", "normalise_country", "validate_event"]


@dataclass(frozen=True)
class ValidationRules:
    max_future: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.max_future < timedelta(0):
            raise ValueError("max_future must not be negative")


DEFAULT_RULES: Final = ValidationRules()

_KINDS: Final[dict[str, EventKind]] = {kind.value: kind for kind in EventKind}
_PLAYER_ID: Final = re.compile(r"[A-Za-z0-9._:-]+", re.ASCII)
_PLAYER_ID_MAX: Final = 64
_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}",
    re.ASCII,
)


def _country_table() -> dict[str, str]:
    # Every spelling we accept maps straight to the stored code, so validation is one dict lookup
    # and never calls str.upper() (which would also turn "ﬁ" into "FI").
    canonical = {c.alpha_2 for c in pycountry.countries}
    canonical.add("XK")  # Kosovo: user-assigned, absent from ISO/pycountry, in wide use.
    spellings = {code: code for code in canonical}
    spellings.update({"UK": "GB", "EL": "GR"})  # common non-ISO aliases (EU usage)
    table: dict[str, str] = {}
    for spelling, code in spellings.items():
        a, b = spelling[0], spelling[1]
        for first in (a.upper(), a.lower()):
            for second in (b.upper(), b.lower()):
                table[first + second] = code
    return table


_COUNTRIES: Final = _country_table()

_EVENT_NOT_OBJECT: Final = EventError("event", "not a JSON object")
_EVENT_REQUIRED: Final = EventError("event", "required")
_EVENT_KIND: Final = EventError("event", 'must be "start" or "end"')
_PLAYER_REQUIRED: Final = EventError("player_id", "required")
_PLAYER_TYPE: Final = EventError("player_id", "must be a string")
_PLAYER_LENGTH: Final = EventError("player_id", f"must be 1 to {_PLAYER_ID_MAX} characters")
_PLAYER_CHARS: Final = EventError("player_id", "only letters, digits and . _ : - are allowed")
_SESSION_REQUIRED: Final = EventError("session_id", "required")
_SESSION_UUID: Final = EventError("session_id", "not a UUID")
_COUNTRY_REQUIRED: Final = EventError("country", "required on start")
_COUNTRY_TYPE: Final = EventError("country", "must be a string")
_COUNTRY_CODE: Final = EventError("country", "not an ISO 3166-1 alpha-2 code")
_TS_REQUIRED: Final = EventError("ts", "required")
_TS_TYPE: Final = EventError("ts", "must be a string")
_TS_FORMAT: Final = EventError("ts", "not an ISO 8601 date-time")


def normalise_country(code: str) -> str | None:
    """The stored code for a client spelling (``"uk"`` -> ``"GB"``), None if not a country."""
    return _COUNTRIES.get(code)


def _describe(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'' if minutes == 1 else 's'}"
    if seconds == int(seconds):
        whole = int(seconds)
        return f"{whole} second{'' if whole == 1 else 's'}"
    return f"{seconds:g} seconds"


def _future_error(rules: ValidationRules) -> EventError:
    return EventError("ts", f"more than {_describe(rules.max_future)} in the future")


def validate_event(raw: object, now: datetime, rules: ValidationRules = DEFAULT_RULES) -> Event:
    """Validate and normalise one event; raise ``InvalidEvent`` carrying the first failing rule.

    ``now`` must be aware. Never raises anything but ``InvalidEvent`` for any JSON value ``raw``.
    """
    if not isinstance(raw, dict):
        raise InvalidEvent(_EVENT_NOT_OBJECT)
    get = raw.get

    kind_raw = get("event")
    if kind_raw is None:
        raise InvalidEvent(_EVENT_REQUIRED)
    kind = _KINDS.get(kind_raw) if isinstance(kind_raw, str) else None
    if kind is None:
        raise InvalidEvent(_EVENT_KIND)

    player_id = get("player_id")
    if player_id is None:
        raise InvalidEvent(_PLAYER_REQUIRED)
    if not isinstance(player_id, str):
        raise InvalidEvent(_PLAYER_TYPE)
    if not 0 < len(player_id) <= _PLAYER_ID_MAX:
        raise InvalidEvent(_PLAYER_LENGTH)
    if _PLAYER_ID.fullmatch(player_id) is None:
        raise InvalidEvent(_PLAYER_CHARS)

    session_raw = get("session_id")
    if session_raw is None:
        raise InvalidEvent(_SESSION_REQUIRED)
    if not isinstance(session_raw, str) or _UUID.fullmatch(session_raw) is None:
        raise InvalidEvent(_SESSION_UUID)
    session_id = uuid.UUID(session_raw)

    country_raw = get("country")
    country: str | None
    if country_raw is None or country_raw == "":
        if kind is EventKind.START:
            raise InvalidEvent(_COUNTRY_REQUIRED)
        country = None
    elif not isinstance(country_raw, str):
        raise InvalidEvent(_COUNTRY_TYPE)
    else:
        country = _COUNTRIES.get(country_raw)
        if country is None:
            raise InvalidEvent(_COUNTRY_CODE)

    ts_raw = get("ts")
    if ts_raw is None:
        raise InvalidEvent(_TS_REQUIRED)
    if not isinstance(ts_raw, str):
        raise InvalidEvent(_TS_TYPE)
    ts = try_parse_instant(ts_raw)
    if ts is None:
        raise InvalidEvent(_TS_FORMAT)
    micros = ts.microsecond % 1000
    if micros:
        ts = ts.replace(microsecond=ts.microsecond - micros)
    if ts - now > rules.max_future:
        raise InvalidEvent(_future_error(rules))

    return Event(kind, player_id, session_id, ts, country)


def check_player_id(player_id: str) -> None:
    """The player_id rule for a path parameter: raises InvalidRequest naming the rule."""
    from player_sessions.domain.errors import InvalidRequest

    for broken, error in (
        (not 0 < len(player_id) <= _PLAYER_ID_MAX, _PLAYER_LENGTH),
        (_PLAYER_ID.fullmatch(player_id) is None, _PLAYER_CHARS),
    ):
        if broken:
            raise InvalidRequest(error.field, error.rule)
