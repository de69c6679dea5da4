"""Time as a dependency, and the one ISO 8601 parser the service uses.

Everything that asks "what time is it" receives a ``Clock`` so tests can pin time with ``FixedClock``.

Accepted date-time grammar (shared by ``parse_instant`` and event validation, so the API accepts the
same strings everywhere)::

    YYYY-MM-DD ( "T" | "t" | " " ) HH:MM [ :SS [ ("." | ",") digits ] ] [ offset ]
    offset = "Z" | "z" | ("+" | "-") HH [ [":"] MM ]

A missing offset means UTC. Fractional digits beyond microseconds are truncated. A date alone, week
or ordinal dates, ISO basic format (``20161122T000000``), hour 24 and leap seconds (``:60``) are
rejected: they are legal ISO 8601 but no client of this service sends them, and accepting them
would only widen what has to be tested.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "FixedClock", "SystemClock", "parse_instant", "try_parse_instant"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real wall clock."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock stopped at one instant, for tests and for replaying a request at a known time."""

    __slots__ = ("_instant",)

    def __init__(self, instant: datetime) -> None:
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError("FixedClock: instant must be timezone-aware")
        self._instant = instant.astimezone(UTC)

    def now(self) -> datetime:
        return self._instant

    def __repr__(self) -> str:
        return f"FixedClock({self._instant.isoformat()})"


# The shape nearly every client sends, which datetime.fromisoformat (C code) parses as is. The offset
# hours/minutes are range-limited here because fromisoformat silently accepts "+05:99".
_FAST = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?",
    re.ASCII,
)
_FULL = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<hm>[0-9]{2}:[0-9]{2})"
    r"(?::(?P<sec>[0-9]{2})(?:[.,](?P<frac>[0-9]+))?)?"
    r"(?:[Zz]|(?P<sign>[+-])(?P<oh>[01][0-9]|2[0-3])(?::?(?P<om>[0-5][0-9]))?)?",
    re.ASCII,
)
# Longer than any string the grammar can sensibly produce; stops a megabyte string from reaching
# the regex engine and the error message.
_MAX_LEN = 64


def try_parse_instant(text: str) -> datetime | None:
    """Parse an ISO 8601 date-time (grammar in the module docstring) to an aware UTC datetime.

    Returns None instead of raising so the per-event validation path never pays for an exception.
    Precision is kept to the microsecond; callers that store milliseconds truncate themselves.
    """
    if len(text) > _MAX_LEN:
        return None
    if _FAST.fullmatch(text) is not None:
        canonical = text
    else:
        m = _FULL.fullmatch(text)
        if m is None:
            return None
        frac = m["frac"]
        offset = "" if m["sign"] is None else f"{m['sign']}{m['oh']}:{m['om'] or '00'}"
        canonical = f"{m['date']}T{m['hm']}:{m['sec'] or '00'}{'.' + frac if frac else ''}{offset}"
    try:
        parsed = datetime.fromisoformat(canonical)
    except ValueError:
        return None
    tz = parsed.tzinfo
    if tz is UTC:
        return parsed
    if tz is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # e.g. 0001-01-01T00:00:00+01:00 lies before datetime.min once in UTC.
        return None


def parse_instant(text: str) -> datetime:
    """Parse e.g. ``2016-12-01T00:00:00Z`` to an aware UTC datetime; ValueError if it is not one."""
    parsed = try_parse_instant(text)
    if parsed is None:
        shown = text if len(text) <= _MAX_LEN else text[:_MAX_LEN] + "..."
        raise ValueError(f"not an ISO 8601 date-time (e.g. 2016-12-01T00:00:00Z): {shown!r}")
    return parsed
