"""How long events are kept, and the Cassandra TTL that makes them disappear on time."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

__all__ = [
    "CASSANDRA_MAX_TTL",
    "is_expired",
    "parse_duration",
    "retention_horizon",
    "ttl_seconds",
]

# Cassandra rejects a larger TTL (20 years).
CASSANDRA_MAX_TTL = 630_720_000

_DURATION = re.compile(r"\s*(?P<num>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*(?P<unit>[smhd]?)\s*", re.ASCII)
_UNITS = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_ONE_SECOND = timedelta(seconds=1)


def parse_duration(text: str) -> timedelta:
    """Parse ``30s``, ``15m``, ``2h``, ``7d``, ``1.5h`` or a bare number of seconds.

    Units are lower case only, so ``m`` can never be mistaken for months. Zero is refused because
    a retention of zero would store rows that are already expired.
    """
    m = _DURATION.fullmatch(text)
    if m is None:
        raise ValueError(f"retention: not a duration like 30s, 15m, 2h or 7d: {text[:40]!r}")
    try:
        duration = timedelta(**{_UNITS[m["unit"]]: float(m["num"])})
    except OverflowError:
        raise ValueError(f"retention: too large: {text[:40]!r}") from None
    if duration <= timedelta(0):
        raise ValueError(f"retention: must be greater than zero: {text[:40]!r}")
    return duration


def retention_horizon(now: datetime, retention: timedelta) -> datetime:
    """The oldest instant still retained at ``now``."""
    return now - retention


def is_expired(ts: datetime, now: datetime, retention: timedelta) -> bool:
    """True when an event at ``ts`` is already past retention (the horizon itself is kept)."""
    return ts < now - retention


def ttl_seconds(ts: datetime, now: datetime, retention: timedelta) -> int:
    """Seconds a row for an event at ``ts`` must live so it vanishes when it leaves retention.

    Rounded up so a row never disappears before its event expires, at least 1 because Cassandra
    treats a TTL of 0 as "forever", and capped at Cassandra's maximum. A ``ts`` in the future gets
    more than ``retention``: it expires relative to its own time, not to ours.
    """
    remaining = ts - now + retention
    whole = -(-remaining // _ONE_SECOND)
    return max(1, min(whole, CASSANDRA_MAX_TTL))
